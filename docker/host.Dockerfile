# The standalone HTTP host (API + blob watcher, no Functions, no workers): src/CloudSoup.ApiHost, control plane
# only, so the image carries no libtorch. Run workers from docker/worker.Dockerfile.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/CloudSoup.ApiHost/CloudSoup.ApiHost.csproj -c Release -o /app

# The published runtimeconfig.json asks for Microsoft.AspNetCore.App: the ASP.NET Core runtime image has it.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble
WORKDIR /app
COPY --from=build /app .
# The .NET images' non-root user (APP_UID=1654).
USER $APP_UID
EXPOSE 8080
ENV CLOUDSOUP_BIND=0.0.0.0 CLOUDSOUP_PORT=8080
# Needs CloudSoupStorage (or the identity-based CloudSoupStorage__* settings) in the environment, and a credential
# (CloudSoup__ApiKey, or CloudSoup__EntraAuthority with CloudSoup__EntraAudience): the host refuses to listen on 0.0.0.0
# without one (docs/security.md).
ENTRYPOINT ["dotnet", "/app/cloudsoup-api.dll"]
