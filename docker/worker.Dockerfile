# The merge worker image. One build argument picks the TorchSharp backend:
#   docker build -f docker/worker.Dockerfile --build-arg TORCH_BACKEND=cuda .   (default: the GPU worker)
#   docker build -f docker/worker.Dockerfile --build-arg TORCH_BACKEND=cpu .
ARG TORCH_BACKEND=cuda

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG TORCH_BACKEND
WORKDIR /src
COPY . .
# ReadyToRun: the assemblies are compiled ahead of time, so a worker process (one per job or part) does not spend its
# first second in the JIT; measured in bench/README.md ("Start-up").
RUN dotnet publish src/CloudSoup.Cli/CloudSoup.Cli.csproj -c Release -o /app -p:CloudSoupTorchBackend=${TORCH_BACKEND} \
    -r linux-x64 --self-contained false -p:PublishReadyToRun=true

# Every runtime stage starts from the ASP.NET Core runtime image: the published runtimeconfig.json asks for
# Microsoft.NETCore.App and Microsoft.AspNetCore.App (tests/CloudSoup.Tests/Infra/DockerfileRuntimeTests.cs).
# Ubuntu 24.04 (noble) provides the libstdc++ (GLIBCXX_3.4.32) that TorchSharp's native library needs.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS runtime-cpu

# No CUDA base image: the libtorch-cuda packages behind TorchSharp-cuda-linux ship their own CUDA runtime,
# cuBLAS/cuBLASLt, cuDNN 9, cuSPARSELt and NVRTC next to libtorch (cuFFT, cuRAND, cuSOLVER and cuSPARSE are
# linked into libtorch_cuda.so), so an nvidia/cuda *-cudnn-runtime base would only add a second copy. The
# driver (libcuda.so.1) is not in the image either way: the NVIDIA container runtime mounts the host's,
# for containers that ask for it with these two variables (the CUDA base images set them).
# https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS runtime-cuda
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime-${TORCH_BACKEND}
# report.html's plots are drawn by ScottPlot through SkiaSharp, which draws text only in fonts installed in the
# image, and the .NET runtime images have none: without this every title, tick and legend would be blank. DejaVu
# Sans is the font the report asks for (src/CloudSoup.Engine/Reports/ReportStyle.cs; tests/CloudSoup.Tests/Infra).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
# The .NET images' non-root user (APP_UID=1654).
USER $APP_UID
ENTRYPOINT ["dotnet", "/app/cloudsoup.dll"]
CMD ["worker", "--once"]
