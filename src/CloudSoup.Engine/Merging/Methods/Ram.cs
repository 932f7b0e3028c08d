// ram: Reinforced Agent Merging (mergekit/merge_methods/ram.py). An element changed (|τ| > ε) by exactly one
// model takes that model's change; one changed by c > 1 models takes their mean change.
using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Ram : IMergeMethod
{
    public MethodSignature Signature => TaskVectorStatisticsMethods.Ram;

    public torch.Tensor Merge(TensorMergeInput input) => Combine(input, 0, 0);

    /// <summary>Shared with ramplus_tl: r and alpha boost the unique entries of models that mostly overlap.</summary>
    internal static torch.Tensor Combine(TensorMergeInput input, double r, double alpha)
    {
        var b = input.Base!;
        double eps = input.Global.Number("epsilon");
        using var scope = torch.NewDisposeScope();
        var tv = input.Tensors.Where((_, i) => i != input.BaseIndex).Select(x => x - b).ToList();
        var active = tv.Select(t => (t.abs() > eps).to_type(b.dtype)).ToList();
        var count = torch.stack(active).sum(dim: 0);
        var unique = (count == 1).to_type(b.dtype);
        var shared = (count > 1).to_type(b.dtype);
        var result = b.clone();
        for (int i = 0; i < tv.Count; i++)
        {
            double boost = 1;
            if (r != 0)
            {
                double nShared = (active[i] * shared).sum().ToDouble(), nUnique = (active[i] * unique).sum().ToDouble();
                boost = 1 + r * Math.Clamp(nShared / Math.Max(nUnique, eps), 0, alpha);
            }
            result.add_(tv[i] * active[i] * unique * boost + tv[i] * active[i] * shared / count.clamp_min(1));
        }
        return result.MoveToOuterDisposeScope();
    }
}
