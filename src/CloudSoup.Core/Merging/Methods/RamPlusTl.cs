// ramplus_tl: RAM+ with tensor-local overlap ratios (mergekit/merge_methods/ram.py). Per model and tensor,
// ρ = #shared-and-active / max(#unique-and-active, ε) and the unique entries are scaled by 1 + r·clip(ρ, 0, α).
// (The paper computes ρ over the whole model; mergekit, and we, per tensor.)
using TorchSharp;

namespace CloudSoup.Core.Merging.Methods;

public sealed class RamPlusTl : IMergeMethod
{
    public string Name => "ramplus_tl";
    public string Description => "RAM+ (tensor-local): RAM with unique entries boosted by the model's overlap ratio.";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public int MinModels => 2;
    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("epsilon", ParameterKind.Number, PerModel: false, Default: 1e-5, Min: 0),
        new("r", ParameterKind.Number, PerModel: false, Default: 0.1, Min: 0),
        new("alpha", ParameterKind.Number, PerModel: false, Default: 0.2, Min: 0),
    ];

    public torch.Tensor Merge(TensorMergeInput input) => Ram.Combine(input, input.Global.Number("r"), input.Global.Number("alpha"));
}
