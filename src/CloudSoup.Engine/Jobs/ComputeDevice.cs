using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Engine.Jobs;

/// <summary>
/// The device merges run on, chosen at run time ("cpu", "cuda", "cuda:1"). The same code runs everywhere;
/// asking for CUDA in a CPU-only build (TorchSharp-cpu) fails with a clear reason instead of silently
/// falling back.
/// </summary>
public static class ComputeDevice
{
    public static torch.Device Resolve(string? name)
    {
        var spec = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (spec == "cpu") return torch.CPU;
        if (spec == "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (spec.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new CloudSoupException(ErrorKind.Transient,
                    $"device '{spec}' was requested but CUDA is not available here (this build uses {(typeof(torch).Assembly.GetName().Name)} with the CPU backend, or no GPU is visible); use device 'cpu' or 'auto', or build with -p:CloudSoupTorchBackend=cuda");
            return new torch.Device(spec);
        }
        throw CloudSoupException.Recipe("device", $"unknown device '{name}' (expected cpu, cuda, cuda:N or auto)");
    }
}
