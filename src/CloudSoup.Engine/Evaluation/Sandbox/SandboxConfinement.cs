namespace CloudSoup.Engine.Evaluation.Sandbox;

/// <summary>How hard the sandbox process confines itself (CloudSoup__EvalSandbox; docs/sandbox.md).</summary>
public enum SandboxConfinement
{
    /// <summary>Resource limits, Landlock and seccomp; a host that cannot provide all three refuses TorchScript models.</summary>
    Strict,
    /// <summary>A separate process with memory and time limits only, for hosts without Landlock; says so in the job's report.</summary>
    LimitsOnly,
}
