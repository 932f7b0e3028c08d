using CloudSoup.Control.Methods;
using CloudSoup.Control.Tensors;

namespace CloudSoup.Control.Recipes;

/// <summary>What to do with tensor names that some models lack (mergekit-pytorch's --tensor-union/--tensor-intersection).</summary>
public enum TensorSetMode { Strict, Union, Intersection }

/// <summary>
/// The recipe's <c>nonfinite</c>: what a merge does with NaN or infinite values in an input or in the merged model.
/// Warn (default) merges and counts them per tensor in the report; Refuse fails the job at the first such tensor.
/// </summary>
public enum NonFinitePolicy { Warn, Refuse }

public sealed record RecipeModel(string Model, IReadOnlyDictionary<string, ParameterSetting> Parameters);

/// <summary>
/// One source of a mergekit slice: layers [Start, End) of Model, with the parameters this source gives its model for
/// this slice only (mergekit/config.py ConfigReader.parameter: a source's own parameters come first).
/// </summary>
public sealed record SliceSource(string Model, int Start, int End, IReadOnlyDictionary<string, ParameterSetting> Parameters);

/// <summary>
/// A mergekit slice: output layers built from the same-length layer ranges of its sources. <see cref="Parameters"/>
/// (the slice's own <c>parameters</c>) apply to its tensors after the sources' and before the top-level ones.
/// </summary>
public sealed record RecipeSlice(IReadOnlyList<SliceSource> Sources, IReadOnlyDictionary<string, ParameterSetting> Parameters)
{
    public int Length => Sources[0].End - Sources[0].Start;
}

/// <summary>
/// evaluation.limits / fisher.limits: what the sandboxed TorchScript model may use (docs/sandbox.md); null fields take
/// the service's defaults.
/// </summary>
public sealed record EvaluationLimits(long? MemoryBytes, int? Seconds)
{
    /// <summary>Less than this and the sandbox's runtime and libtorch alone would not fit.</summary>
    public const long MinMemoryBytes = 256_000_000;
}

public sealed record EvaluationSection(string Model, string Data, string? Test, int BatchSize)
{
    /// <summary>The architectures CloudSoup implements itself (CloudSoup.Engine/Evaluation/BuiltinModel.cs); any other model is a TorchScript file.</summary>
    public static readonly IReadOnlyList<string> BuiltinArchitectures = ["builtin:mlp", "builtin:cnn"];

    /// <summary>evaluation.limits: memory and time for a TorchScript model's sandbox.</summary>
    public EvaluationLimits? Limits { get; init; }

    /// <summary>Default ceiling on the bytes a soup search holds in memory (ingredients as float32 plus one candidate).</summary>
    public const long DefaultMemoryBudget = 8L << 30;

    /// <summary>evaluation.memory_budget: how much a soup search may hold in memory.</summary>
    public long MemoryBudgetBytes { get; init; } = DefaultMemoryBudget;

    /// <summary>evaluation.reset_bn: re-estimate BatchNorm running statistics of the merged model on <see cref="Data"/> (default true).</summary>
    public bool ResetBn { get; init; } = true;

    /// <summary>evaluation.reset_bn_examples: at most this many examples for the re-estimate.</summary>
    public int ResetBnExamples { get; init; } = 2048;
}

public sealed record OutputSection(long ShardSizeBytes, DType? DType);

/// <summary>
/// How many workers one merge is split over (the <c>parallelism</c> section; docs/fanout.md). <see cref="Parts"/> is
/// the number asked for, or null for <c>auto</c>: the worker picks one part per CloudSoup:Parallelism:PartBytes of input.
/// Either way a part writes whole output shards, so the job never has more parts than its output has shards.
/// </summary>
public sealed record ParallelismSection(int? Parts)
{
    public bool Auto => Parts is null;
}

/// <summary>
/// Compute missing diagonal Fishers inside the job (merge_method fisher / gradient_matching): every model without a
/// <c>fisher</c> parameter gets one from <see cref="Model"/> run on <see cref="Data"/> (Evaluation/FisherEstimator.cs).
/// </summary>
/// <summary>Where a Fisher's labels come from: sampled from the model, every class weighted (exact), the data's (empirical) or the argmax.</summary>
public enum FisherLabels { Sampled, Exact, Empirical, Argmax }

public sealed record FisherSection(string Model, string Data, FisherLabels Labels, int Samples, long Seed)
{
    /// <summary>fisher.limits: memory and time for a TorchScript model's sandbox.</summary>
    public EvaluationLimits? Limits { get; init; }
}

/// <summary>
/// Weight scope alignment before merging (Alignment/WeightScope.cs): every model but the base is re-scoped, per
/// layer, to the fused scope. <see cref="Weights"/> (per model, recipe order) default to equal; <see cref="Layers"/>
/// is "matrices" (float tensors with 2+ dimensions) or "all" (every float tensor).
/// </summary>
public sealed record ScopeAlignmentSection(string Fusion, IReadOnlyList<double>? Weights, string Layers, double Eps);

/// <summary>Permutation alignment before merging (docs/alignment.md). <see cref="Reference"/> is always one of the models.</summary>
public sealed record AlignmentSection(string Method, string Spec, string Reference, int MaxIter, long Seed, int PathPoints, bool ResetBn)
{
    public const string WeightMatching = "weight_matching";
    public const string ActivationMatching = "activation_matching";
    public const int DefaultMaxIter = 100;
    /// <summary>Points on the linear path where the loss barrier is measured (0, 0.1, ..., 1).</summary>
    public const int DefaultPathPoints = 11;
    /// <summary>Permutation specs CloudSoup derives itself; any other spec is a reference to a JSON file.</summary>
    public static readonly IReadOnlyList<string> BuiltinSpecs = ["auto", "mlp", "vgg", "resnet"];
    /// <summary>The architectures whose hidden activations activation matching can observe.</summary>
    public static IReadOnlyList<string> ActivationArchitectures => EvaluationSection.BuiltinArchitectures;
}

/// <summary>
/// A parsed, validated recipe: mergekit's config format plus CloudSoup's sections (docs/contracts.md, "Recipe").
/// Produced only by <see cref="RecipeParser"/>, so every instance has passed validation.
/// </summary>
public sealed class Recipe
{
    public required string MergeMethod { get; init; }
    public string? BaseModel { get; init; }
    /// <summary>The models, in recipe order. With <see cref="Slices"/>: the distinct slice sources in order of first appearance, with no parameters (those stay on their slices).</summary>
    public required IReadOnlyList<RecipeModel> Models { get; init; }
    /// <summary>mergekit's <c>slices</c>, when the recipe uses them instead of whole models (Merging/SliceLayout.cs).</summary>
    public IReadOnlyList<RecipeSlice>? Slices { get; init; }
    public required IReadOnlyDictionary<string, ParameterSetting> Parameters { get; init; }
    public DType? DType { get; init; }
    public DType? OutDType { get; init; }
    public TensorSetMode Tensors { get; init; }
    public long Seed { get; init; }
    public string? Name { get; init; }
    public AlignmentSection? Alignment { get; init; }
    public EvaluationSection? Evaluation { get; init; }
    public FisherSection? Fisher { get; init; }
    public ScopeAlignmentSection? ScopeAlignment { get; init; }
    public required OutputSection Output { get; init; }
    /// <summary>tokenizer_source / tokenizer.source: where the merged model's tokenizer comes from (null: the base or first model, unchecked).</summary>
    public TokenizerSource? TokenizerSource { get; init; }
    /// <summary>chat_template: <see cref="Recipes.ChatTemplate.Auto"/> or Jinja text, written into the merged tokenizer_config.json.</summary>
    public string? ChatTemplate { get; init; }
    public NonFinitePolicy NonFinite { get; init; } = NonFinitePolicy.Warn;
    /// <summary>The <c>parallelism</c> section; null: one worker runs the whole job.</summary>
    public ParallelismSection? Parallelism { get; init; }

    /// <summary>True when the merged model's BatchNorm statistics are re-estimated (evaluation.reset_bn, unless alignment.reset_bn is false).</summary>
    public bool ResetsBatchNorm => Evaluation is { ResetBn: true } && Alignment?.ResetBn != false;

    /// <summary>Warnings about what the recipe sets and CloudSoup ignores, as mergekit does (parameters the method does not use), and notes on the tokenizer source.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Every model reference the merge reads: models in order, then the base if it is not among them.</summary>
    public IReadOnlyList<string> InputModels =>
        BaseModel is null || Models.Any(m => m.Model == BaseModel)
            ? Models.Select(m => m.Model).ToList()
            : Models.Select(m => m.Model).Append(BaseModel).ToList();

    internal Recipe WithAlignment(AlignmentSection alignment) => Copy(Models, alignment);

    /// <summary>This recipe over other model entries (the virtual models a sliced recipe is planned over).</summary>
    public Recipe WithModels(IReadOnlyList<RecipeModel> models) => Copy(models, Alignment);

    /// <summary>This recipe with other top-level parameters (e.g. a computed base_fisher).</summary>
    public Recipe WithParameters(IReadOnlyDictionary<string, ParameterSetting> parameters) => Copy(Models, Alignment, parameters);

    private Recipe Copy(IReadOnlyList<RecipeModel> models, AlignmentSection? alignment, IReadOnlyDictionary<string, ParameterSetting>? parameters = null) => new()
    {
        MergeMethod = MergeMethod, BaseModel = BaseModel, Models = models, Slices = Slices, Parameters = parameters ?? Parameters, DType = DType, OutDType = OutDType,
        Tensors = Tensors, Seed = Seed, Name = Name, Alignment = alignment, Evaluation = Evaluation, Fisher = Fisher, ScopeAlignment = ScopeAlignment, Output = Output, NonFinite = NonFinite, Parallelism = Parallelism, Warnings = Warnings,
        TokenizerSource = TokenizerSource, ChatTemplate = ChatTemplate,
    };

    /// <summary>Every parameter block the recipe gives, with its path: models', slice sources', slices' and the top-level one.</summary>
    public IEnumerable<(IReadOnlyDictionary<string, ParameterSetting> Settings, string Path)> ParameterBlocks
    {
        get
        {
            for (int i = 0; i < Models.Count; i++) yield return (Models[i].Parameters, $"models[{i}].parameters");
            for (int s = 0; s < (Slices?.Count ?? 0); s++)
            {
                for (int j = 0; j < Slices![s].Sources.Count; j++) yield return (Slices[s].Sources[j].Parameters, $"slices[{s}].sources[{j}].parameters");
                yield return (Slices[s].Parameters, $"slices[{s}].parameters");
            }
            yield return (Parameters, "parameters");
        }
    }

    /// <summary>Every reference the job reads: models plus evaluation files (and a tokenizer source that is not a model).</summary>
    public IReadOnlyList<string> AllReferences
    {
        get
        {
            var refs = InputModels.ToList();
            if (MethodCatalog.TryGet(MergeMethod, out var method))
                refs.AddRange(method.AuxiliaryReferences(this).Where(r => !refs.Contains(r)));
            if (Evaluation != null)
            {
                if (!Evaluation.Model.StartsWith("builtin:", StringComparison.Ordinal)) refs.Add(Evaluation.Model);
                refs.Add(Evaluation.Data);
                if (Evaluation.Test != null) refs.Add(Evaluation.Test);
            }
            if (Alignment != null && !AlignmentSection.BuiltinSpecs.Contains(Alignment.Spec)) refs.Add(Alignment.Spec);
            if (Fisher != null)
            {
                if (!Fisher.Model.StartsWith("builtin:", StringComparison.Ordinal)) refs.Add(Fisher.Model);
                refs.Add(Fisher.Data);
            }
            if (TokenizerSource?.Model is { } tokenizer && !refs.Contains(tokenizer)) refs.Add(tokenizer);
            return refs;
        }
    }
}
