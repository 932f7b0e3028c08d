# The standalone HTTP host (API + blob watcher, no Functions): `cloudsoup dev --no-worker --bind 0.0.0.0`.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/CloudSoup.Cli/CloudSoup.Cli.csproj -c Release -o /app -p:CloudSoupTorchBackend=cpu

# The published runtimeconfig.json asks for Microsoft.AspNetCore.App: the ASP.NET Core runtime image has it.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble
WORKDIR /app
COPY --from=build /app .
# The .NET images' non-root user (APP_UID=1654).
USER $APP_UID
EXPOSE 8080
ENTRYPOINT ["dotnet", "/app/cloudsoup.dll"]
# Needs CloudSoupStorage (or the identity-based CloudSoupStorage__* settings) in the environment.
CMD ["dev", "--no-worker", "--bind", "0.0.0.0", "--port", "8080"]
