// Declarations of the geometric methods: slerp, nuslerp, multislerp, karcher, model_stock, nearswap
// (mergekit/merge_methods/*.py; Model Stock: Jang et al. 2024, arXiv 2403.19522).
namespace CloudSoup.Control.Methods;

public static class GeometricMethods
{
    public static readonly MethodSignature Slerp = new()
    {
        Name = "slerp", Description = "Spherical interpolation between the base model and one other model.", BaseModel = BaseModelUse.Required,
        OthersBesidesBase = (1, 1),
        Parameters = [new("t", ParameterKind.Number, PerModel: false, Required: true, Help: "0 = base model, 1 = the other model; outside [0, 1] extrapolates along the arc (as mergekit)")],
    };

    public static readonly MethodSignature NuSlerp = new()
    {
        Name = "nuslerp", Description = "Weighted spherical interpolation of two models (or their task vectors), whole-tensor or per row.",
        BaseModel = BaseModelUse.Optional, OthersBesidesBase = (2, 2),
        Parameters =
        [
            new("weight", ParameterKind.Number, PerModel: true, Required: true),
            new("nuslerp_flatten", ParameterKind.Bool, PerModel: false, Default: true, Help: "treat the whole tensor as one vector"),
            new("nuslerp_row_wise", ParameterKind.Bool, PerModel: false, Default: false, Help: "when not flattening, slerp rows (dim 0) instead of columns"),
        ],
    };

    public static readonly MethodSignature MultiSlerp = new()
    {
        Name = "multislerp", Description = "Barycentric spherical interpolation of several models (or task vectors when a base is given).",
        BaseModel = BaseModelUse.Optional,
        Parameters =
        [
            new("weight", ParameterKind.Number, PerModel: true, Required: true),
            new("normalize_weights", ParameterKind.Bool, PerModel: false, Default: true),
            new("eps", ParameterKind.Number, PerModel: false, Default: 1e-8, Min: 0, MinExclusive: true),
        ],
    };

    public static readonly MethodSignature Karcher = new()
    {
        Name = "karcher", Description = "Karcher mean of the models on the sphere, scaled by their mean norm.", BaseModel = BaseModelUse.Optional,
        Parameters =
        [
            new("max_iter", ParameterKind.Number, PerModel: false, Default: 10.0, Min: 1),
            new("tol", ParameterKind.Number, PerModel: false, Default: 1e-5, Min: 0, MinExclusive: true),
        ],
    };

    public static readonly MethodSignature ModelStock = new()
    {
        Name = "model_stock", Description = "Model Stock: interpolate the average of the fine-tunes toward the base by their angle.",
        BaseModel = BaseModelUse.Required, MinModels = 3, OthersBesidesBase = (2, int.MaxValue),
        Parameters = [new("filter_wise", ParameterKind.Bool, PerModel: false, Default: false, Help: "one angle per vector along the last dimension instead of one per tensor")],
    };

    public static readonly MethodSignature NearSwap = new()
    {
        Name = "nearswap", Description = "Swap in the other model's values where they are within t of the base.", BaseModel = BaseModelUse.Required,
        OthersBesidesBase = (1, 1),
        Parameters = [new("t", ParameterKind.Number, PerModel: false, Required: true, Min: 0, Help: "similarity threshold")],
    };
}
