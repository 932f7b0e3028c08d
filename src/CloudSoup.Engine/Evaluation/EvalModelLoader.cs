// Where every evaluation model comes from: the built-in architectures are CloudSoup's own code and run in process;
// anything else is a TorchScript module, which is code that came with the job, so it runs only in a sandbox process
// (Sandbox/SandboxedModel.cs, docs/sandbox.md) under the recipe's limits (evaluation.limits / fisher.limits) or the
// operator's defaults.
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Evaluation.Sandbox;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.Evaluation;

public sealed class EvalModelLoader(SandboxSettings sandbox)
{
    /// <summary>The largest TorchScript module read.</summary>
    public const long MaxModuleBytes = 2L << 30;

    /// <summary>Strict sandbox with the default limits.</summary>
    public static EvalModelLoader Default { get; } = new(SandboxSettings.Default);

    public SandboxSettings Sandbox { get; } = sandbox;

    /// <summary>
    /// Loads <paramref name="reference"/>: builtin:NAME in process, a TorchScript module in a new sandbox process.
    /// <paramref name="section"/> is the recipe section that names it ("evaluation" or "fisher"), or null outside a recipe.
    /// </summary>
    public async Task<IEvalModel> LoadAsync(ICheckpointStore store, string reference, EvaluationLimits? limits, string? section, CancellationToken ct)
    {
        if (BuiltinModel.IsBuiltin(reference)) return BuiltinModel.Create(reference);
        var resolved = Sandbox.Resolve(limits, section ?? "evaluation");
        var bytes = await store.ReadAllAsync(reference, MaxModuleBytes, ct).ConfigureAwait(false);
        return await Task.Run(() => SandboxedModel.Start(bytes, reference, Sandbox, resolved, section), ct).ConfigureAwait(false);
    }
}
