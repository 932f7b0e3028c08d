using CloudSoup.Engine.Jobs.Steps;
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Soups;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Jobs;

/// <summary>What the steps of one job share: its inputs, what earlier steps decided, and what goes into the report.</summary>
public sealed class JobContext(Recipe recipe, ICheckpointStore store, IOutputSink sink, IJobEvaluator? evaluator, EvalModelLoader models, torch.Device device,
    IProgress<JobProgress>? progress, string? jobId, CancellationToken ct) : IAsyncDisposable
{
    public Recipe Recipe { get; } = recipe;
    public MethodSignature Signature { get; } = MethodCatalog.Get(recipe.MergeMethod);
    public ICheckpointStore Store { get; } = store;
    public IOutputSink Sink { get; } = sink;
    public IJobEvaluator? Evaluator { get; } = evaluator;
    /// <summary>Loads evaluation models: built-ins in process, TorchScript in the sandbox.</summary>
    public EvalModelLoader Models { get; } = models;
    public torch.Device Device { get; } = device;
    public IProgress<JobProgress>? Progress { get; } = progress;
    public string? JobId { get; } = jobId;
    public CancellationToken Ct { get; } = ct;

    /// <summary>The method's per-tensor compute (a soup's is the weighted average it chooses).</summary>
    public IMergeMethod Method { get; } = MergeMethods.For(recipe.MergeMethod);

    /// <summary>The recipe the plan is made from: over sliced virtual models, with computed Fisher references.</summary>
    public Recipe PlanRecipe { get; set; } = recipe;

    /// <summary>Where the plan looks parameters up; null: the plan recipe's models and top level (sliced recipes set it per slice).</summary>
    public IParameterLookup? Parameters { get; set; }

    /// <summary>The opened checkpoints, in the method's input order (disposed with the job).</summary>
    public List<Checkpoint> Checkpoints { get; } = [];

    /// <summary>What the plan reads: the checkpoints, or virtual models stacked from their slices.</summary>
    public IReadOnlyList<Checkpoint> Inputs { get; set; } = [];

    /// <summary>Auxiliary checkpoints (Fishers) by reference (disposed with the job).</summary>
    public Dictionary<string, Checkpoint> Auxiliary { get; } = [];

    public MergePlan Plan { get; set; } = null!;

    /// <summary>The merged tensors, kept in memory for evaluation when the recipe evaluates (disposed with the job).</summary>
    public Dictionary<string, torch.Tensor>? Kept { get; } = recipe.Evaluation != null ? [] : null;

    public AlignmentOutcome? Alignment { get; set; }
    public List<ComputedFisher>? Fishers { get; set; }
    public ScopeReport? ScopeAlignment { get; set; }
    public SoupReport? Soup { get; set; }
    /// <summary>A split soup's ingredient scores, measured by its parts (docs/fanout.md): the search starts from them.</summary>
    public IReadOnlyList<Metrics>? SoupSingles { get; set; }
    /// <summary>A split soup's evaluation-section rows of its ingredients, made by its parts: only the merge is evaluated.</summary>
    public IReadOnlyList<ModelEvaluation>? IngredientEvaluations { get; set; }
    public string? WholeModelNote { get; set; }
    public DeferredOutputs? Deferred { get; set; }
    public BatchNormResetReport? BatchNormReset { get; set; }
    public MergeStats? Stats { get; set; }
    public EvaluationReport? Evaluation { get; set; }
    public MergeReport? Report { get; set; }
    /// <summary>The Hugging Face side files written next to the weights (ModelFilesStep, ModelCardStep).</summary>
    public ModelFiles.ModelFilesReport? ModelFiles { get; set; }
    /// <summary>How the job was split over workers, for the report (recipes with a parallelism section).</summary>
    public ParallelismReport? Parallelism { get; set; }
    public List<string> Warnings { get; } = [.. recipe.Warnings];
    public Dictionary<string, double> PhaseSeconds { get; } = [];

    public void ReportProgress(string phase, double fraction, string? detail = null) => Progress?.Report(new JobProgress(phase, fraction, detail));

    public Task<Checkpoint> OpenAsync(string reference) => Checkpoint.OpenAsync(Store, reference, Ct);

    public async ValueTask DisposeAsync()
    {
        foreach (var c in Checkpoints) await c.DisposeAsync().ConfigureAwait(false);
        foreach (var c in Auxiliary.Values) await c.DisposeAsync().ConfigureAwait(false);
        if (Kept != null) foreach (var t in Kept.Values) t.Dispose();
        Alignment?.Dispose();
    }
}
