// cloudsoup-sandbox --memory BYTES --confine strict|limits-only [--threads N]
// Serves one TorchScript evaluation model over stdin/stdout for the worker that started it (docs/sandbox.md).
return CloudSoup.Engine.Evaluation.Sandbox.SandboxServer.Run(args);
