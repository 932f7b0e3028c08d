// Declarations of the methods from papers no merge tool offers as a service: Fisher-weighted averaging
// (Matena & Raffel 2021, arXiv 2111.09832), uncertainty-based gradient matching (Daheim et al. 2024,
// arXiv 2310.12808) and agreement-filtered averaging (after Gradient Agreement Filtering, Chaubard et al. 2024,
// arXiv 2412.18052; docs/methods.md).
namespace CloudSoup.Control.Methods;

public static class PaperMethods
{
    public static readonly MethodSignature Fisher = new()
    {
        Name = "fisher", Description = "Fisher-weighted averaging with per-model diagonal Fishers.", BaseModel = BaseModelUse.NotUsed, MinModels = 1,
        Parameters =
        [
            new("fisher", ParameterKind.Reference, PerModel: true, Required: true, Help: "safetensors checkpoint with the model's diagonal Fisher"),
            new("weight", ParameterKind.Number, PerModel: true, Default: 1.0, Min: 0, Help: "the model's coefficient λ_i"),
            new("floor", ParameterKind.Number, PerModel: false, Default: 1e-6, Min: 0, Help: "F̃ = max(F, floor)"),
            new("normalize_fishers", ParameterKind.Bool, PerModel: false, Default: true, Help: "divide each model's coefficient by its Fisher's L2 norm"),
            new("favor_target", ParameterKind.Bool, PerModel: false, Default: true, Help: "floor only the first model's Fisher"),
        ],
    };

    public static readonly MethodSignature GradientMatching = new()
    {
        Name = "gradient_matching", Description = "Uncertainty-based gradient matching: task arithmetic reweighted by diagonal Fishers/Hessians.",
        BaseModel = BaseModelUse.Required,
        Parameters =
        [
            new("fisher", ParameterKind.Reference, PerModel: true, Required: true, Help: "diagonal Fisher of the fine-tuned model"),
            new("scale", ParameterKind.Number, PerModel: true, Default: 1.0, Min: 0, Help: "s_t, e.g. the task's training-set size"),
            new("weight", ParameterKind.Number, PerModel: true, Default: 1.0, Help: "per-task factor of α_t"),
            new("base_fisher", ParameterKind.Reference, PerModel: false, Help: "diagonal Fisher of the base model (omitted: 0)"),
            new("base_scale", ParameterKind.Number, PerModel: false, Default: 1.0, Min: 0, Help: "s_pt"),
            new("delta_0", ParameterKind.Number, PerModel: false, Default: 1e-12, Min: 0, Help: "prior precision δ0"),
            new("lambda", ParameterKind.Number, PerModel: false, Default: 1.0, Help: "α, the scaling factor"),
        ],
    };

    public static readonly MethodSignature Agreement = new()
    {
        Name = "agreement", Description = "Agreement-filtered averaging: average only the task vectors within a cosine distance of the consensus.",
        BaseModel = BaseModelUse.Required,
        Parameters =
        [
            new("threshold", ParameterKind.Number, PerModel: false, Default: 1.0, Min: 0, Max: 2, Help: "largest accepted cosine distance 1 − cos (2 = no filter, 1 = cos ≥ 0)"),
            new("mode", ParameterKind.Text, PerModel: false, Default: "sequential_mean", Choices: ["sequential_mean", "sequential_pair", "order_free"]),
            new("granularity", ParameterKind.Text, PerModel: false, Default: "tensor", Choices: ["tensor", "model"],
                Help: "decide per tensor, or once for the whole model (cosines over all merged tensors; one extra read pass)"),
            new("lambda", ParameterKind.Number, PerModel: false, Default: 1.0),
        ],
    };

    /// <summary>granularity: model (absent means the default, tensor).</summary>
    public static bool WholeModelAgreement(ResolvedParameters global) =>
        global.Values.TryGetValue("granularity", out var v) && v.Text == "model";
}
