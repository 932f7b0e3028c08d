// ramplus_tl: RAM+ with tensor-local overlap ratios (mergekit/merge_methods/ram.py). Per model and tensor,
// ρ = #shared-and-active / max(#unique-and-active, ε) and the unique entries are scaled by 1 + r·clip(ρ, 0, α).
// (The paper computes ρ over the whole model; mergekit, and we, per tensor.)
using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class RamPlusTl : IMergeMethod
{
    public MethodSignature Signature => TaskVectorStatisticsMethods.RamPlusTl;

    public torch.Tensor Merge(TensorMergeInput input) => Ram.Combine(input, input.Global.Number("r"), input.Global.Number("alpha"));
}
