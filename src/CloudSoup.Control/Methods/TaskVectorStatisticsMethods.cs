// Declarations of the methods that weigh task vectors by statistics across models: sce, ram, ramplus_tl,
// arcee_fusion (mergekit/merge_methods/*.py).
namespace CloudSoup.Control.Methods;

public static class TaskVectorStatisticsMethods
{
    public static readonly MethodSignature Sce = new()
    {
        Name = "sce", Description = "SCE: select high-variance elements, weight task vectors by energy, erase sign conflicts.", BaseModel = BaseModelUse.Required,
        Parameters =
        [
            new("select_topk", ParameterKind.Number, PerModel: false, Default: 1.0, Min: 0, MinExclusive: true, Max: 1, Help: "fraction of positions (by variance across models) kept"),
            new("int8_mask", ParameterKind.Bool, PerModel: false, Default: false, Help: "accepted for mergekit compatibility; no effect"),
        ],
    };

    public static readonly MethodSignature Ram = new()
    {
        Name = "ram", Description = "RAM: keep unique task-vector entries whole, average entries several models change.", BaseModel = BaseModelUse.Required,
        Parameters = [new("epsilon", ParameterKind.Number, PerModel: false, Default: 1e-5, Min: 0, Help: "|τ| above this counts as a change")],
    };

    public static readonly MethodSignature RamPlusTl = new()
    {
        Name = "ramplus_tl", Description = "RAM+ (tensor-local): RAM with unique entries boosted by the model's overlap ratio.", BaseModel = BaseModelUse.Required,
        Parameters =
        [
            new("epsilon", ParameterKind.Number, PerModel: false, Default: 1e-5, Min: 0),
            new("r", ParameterKind.Number, PerModel: false, Default: 0.1, Min: 0),
            new("alpha", ParameterKind.Number, PerModel: false, Default: 0.2, Min: 0),
        ],
    };

    public static readonly MethodSignature ArceeFusion = new()
    {
        Name = "arcee_fusion", Description = "Arcee Fusion: take the other model's change only where its importance is an outlier.",
        BaseModel = BaseModelUse.Required, OthersBesidesBase = (1, 1),
    };
}
