// The task-arithmetic family's declarations (task_arithmetic, ties, dare_*, breadcrumbs*, della*): one pipeline,
// configured per method by how it sparsifies, whether it elects signs and its defaults. The pipeline itself is
// CloudSoup.Engine/Merging/TaskArithmeticFamily.cs; the parameter names and defaults follow mergekit's
// (mergekit/merge_methods/generalized_task_arithmetic.py).
namespace CloudSoup.Control.Methods;

public enum SparsifyKind { None, Magnitude, Random, MagnitudeOutliers, DellaMagprune }

public sealed class TaskVectorSignature : MethodSignature
{
    public required SparsifyKind Sparsify { get; init; }
    public required bool SignConsensus { get; init; }
    public required bool DefaultNormalize { get; init; }
    public required bool DefaultRescale { get; init; }

    internal static TaskVectorSignature Create(string name, string description, SparsifyKind sparsify, bool signConsensus, bool normalize, bool rescale) => new()
    {
        Name = name, Description = description, BaseModel = BaseModelUse.Required, MinModels = 2,
        Sparsify = sparsify, SignConsensus = signConsensus, DefaultNormalize = normalize, DefaultRescale = rescale,
        Parameters = BuildParameters(sparsify, normalize, rescale),
    };

    private static List<ParameterSpec> BuildParameters(SparsifyKind sparsify, bool normalize, bool rescale)
    {
        var p = new List<ParameterSpec>
        {
            new("weight", ParameterKind.Number, PerModel: true, Required: true, Help: "the task vector's weight"),
            new("density", ParameterKind.Number, PerModel: true, Default: 1.0, Min: 0, MinExclusive: true, Max: 1, Help: "fraction of the task vector kept"),
            new("normalize", ParameterKind.Bool, PerModel: false, Default: normalize, Help: "divide by the summed weights of the contributing models"),
            new("rescale", ParameterKind.Bool, PerModel: false, Default: rescale, Help: "rescale the sparsified task vector"),
            new("rescale_mode", ParameterKind.Text, PerModel: false, Default: "l1", Choices: ["l1", "inverse_density"],
                Help: "l1: match the L1 norm (mergekit); inverse_density: divide by the keep probability (DARE/DELLA papers)"),
            new("lambda", ParameterKind.Number, PerModel: false, Default: 1.0, Help: "scale of the merged task vector"),
            new("int8_mask", ParameterKind.Bool, PerModel: false, Default: false, Help: "accepted for mergekit compatibility; a memory option there, no effect here"),
        };
        if (sparsify == SparsifyKind.Magnitude)
            p.Add(new("topk_scope", ParameterKind.Text, PerModel: false, Default: "tensor", Choices: ["tensor", "model"],
                Help: "tensor: top-k per tensor (mergekit); model: one magnitude threshold over each whole task vector (the TIES paper), one extra read pass"));
        if (sparsify == SparsifyKind.MagnitudeOutliers)
            p.Add(new("gamma", ParameterKind.Number, PerModel: true, Default: 0.01, Min: 0, Max: 1, Help: "fraction of the largest entries removed (fewer when density + gamma > 1; none at density 1)"));
        if (sparsify == SparsifyKind.DellaMagprune)
            p.Add(new("epsilon", ParameterKind.Number, PerModel: true, Default: 0.15, Min: 0, Help: "half-width of the keep-probability range"));
        return p;
    }

    public override (string Parameter, string Reason)? CheckResolved(ResolvedParameters global, ResolvedParameters perModel)
    {
        double density = perModel.NumberOrNull("density") ?? 1.0;
        if (Sparsify == SparsifyKind.DellaMagprune && density < 1)
        {
            double eps = perModel.NumberOrNull("epsilon") ?? 0.15;
            if (density - eps <= 0 || density + eps >= 1)
                return ("epsilon", $"density ± epsilon must lie inside (0, 1), got {density} ± {eps}");
        }
        return null;
    }

    /// <summary>topk_scope: model — one magnitude threshold per whole task vector, found in a pre-pass.</summary>
    public static bool WholeModelTopK(ResolvedParameters global) =>
        global.Values.TryGetValue("topk_scope", out var v) && v.Text == "model";
}

public static class TaskVectorMethods
{
    public static readonly TaskVectorSignature TaskArithmetic = TaskVectorSignature.Create("task_arithmetic",
        "Base plus the weighted sum of task vectors, scaled by lambda.", SparsifyKind.None, signConsensus: false, normalize: false, rescale: false);
    public static readonly TaskVectorSignature Ties = TaskVectorSignature.Create("ties",
        "TIES: trim to the top-density magnitudes, elect signs, disjoint mean.", SparsifyKind.Magnitude, signConsensus: true, normalize: true, rescale: false);
    public static readonly TaskVectorSignature DareTies = TaskVectorSignature.Create("dare_ties",
        "DARE random drop and rescale, then TIES sign election.", SparsifyKind.Random, signConsensus: true, normalize: false, rescale: true);
    public static readonly TaskVectorSignature DareLinear = TaskVectorSignature.Create("dare_linear",
        "DARE random drop and rescale, then a weighted sum of task vectors.", SparsifyKind.Random, signConsensus: false, normalize: false, rescale: true);
    public static readonly TaskVectorSignature Breadcrumbs = TaskVectorSignature.Create("breadcrumbs",
        "Model Breadcrumbs: drop the largest (gamma) and smallest entries of each task vector.", SparsifyKind.MagnitudeOutliers, signConsensus: false, normalize: false, rescale: false);
    public static readonly TaskVectorSignature BreadcrumbsTies = TaskVectorSignature.Create("breadcrumbs_ties",
        "Breadcrumbs sparsification followed by TIES sign election.", SparsifyKind.MagnitudeOutliers, signConsensus: true, normalize: false, rescale: false);
    public static readonly TaskVectorSignature Della = TaskVectorSignature.Create("della",
        "DELLA: magnitude-ranked random drop, then TIES sign election.", SparsifyKind.DellaMagprune, signConsensus: true, normalize: true, rescale: true);
    public static readonly TaskVectorSignature DellaLinear = TaskVectorSignature.Create("della_linear",
        "DELLA: magnitude-ranked random drop, then a weighted sum.", SparsifyKind.DellaMagprune, signConsensus: false, normalize: false, rescale: true);
}
