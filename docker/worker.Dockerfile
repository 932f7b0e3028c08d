# The merge worker image. One build property picks the TorchSharp backend:
#   docker build -f docker/worker.Dockerfile --build-arg TORCH_BACKEND=cuda .   (default: CUDA runtime base)
#   docker build -f docker/worker.Dockerfile --build-arg TORCH_BACKEND=cpu .
ARG TORCH_BACKEND=cuda

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TORCH_BACKEND
WORKDIR /src
COPY . .
RUN dotnet publish src/CloudSoup.Cli/CloudSoup.Cli.csproj -c Release -o /app -p:CloudSoupTorchBackend=${TORCH_BACKEND}

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS runtime-cuda
FROM mcr.microsoft.com/dotnet/runtime:10.0-noble AS runtime-cpu

FROM runtime-${TORCH_BACKEND}
# The CUDA base has no .NET runtime; install it there (the CPU base already has it).
RUN if ! command -v dotnet >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends dotnet-runtime-10.0 aspnetcore-runtime-10.0 \
      && rm -rf /var/lib/apt/lists/*; fi \
    && useradd --uid 10001 --create-home cloudsoup
WORKDIR /app
COPY --from=build /app .
USER 10001
ENTRYPOINT ["dotnet", "/app/cloudsoup.dll"]
CMD ["worker", "--once"]
