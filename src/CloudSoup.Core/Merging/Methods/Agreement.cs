// agreement: agreement-filtered averaging (AFA), CloudSoup's transfer of Gradient Agreement Filtering
// (Chaubard et al. 2024) to merging — reference/merge-methods.md §11. Per tensor, a task vector joins the
// merge only if its cosine distance 1 − cos to the reference is ≤ threshold:
//   sequential_mean: m ← τ_1; accept τ_k against the running mean m, m ← m + (τ_k − m)/(n+1)
//   sequential_pair: the same but m ← (m + τ_k)/2, exactly GAF's update
//   order_free:      m̄ = mean of all τ; accept τ_k against m̄; average the accepted ones
// A zero vector has undefined cosine: its distance is 2 (rejected unless threshold = 2). If nothing is
// accepted in order_free mode the result is the base (GAF skips the step). Accepted models are reported.
using TorchSharp;

namespace CloudSoup.Core.Merging.Methods;

public sealed class Agreement : IMergeMethod
{
    public string Name => "agreement";
    public string Description => "Agreement-filtered averaging: average only the task vectors within a cosine distance of the consensus.";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public int MinModels => 2;
    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("threshold", ParameterKind.Number, PerModel: false, Default: 1.0, Min: 0, Max: 2, Help: "largest accepted cosine distance 1 − cos (2 = no filter, 1 = cos ≥ 0)"),
        new("mode", ParameterKind.Text, PerModel: false, Default: "sequential_mean", Choices: ["sequential_mean", "sequential_pair", "order_free"]),
        new("lambda", ParameterKind.Number, PerModel: false, Default: 1.0),
    ];

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        double tau = input.Global.Number("threshold"), lambda = input.Global.Number("lambda");
        string mode = input.Global.Text("mode");
        using var scope = torch.NewDisposeScope();
        var idx = Enumerable.Range(0, input.Tensors.Count).Where(i => i != input.BaseIndex).ToList();
        var tv = idx.Select(i => input.Tensors[i] - b).ToList();
        var accepted = new List<int>();
        torch.Tensor m;
        if (mode == "order_free")
        {
            var mean = torch.stack(tv).mean([0]);
            for (int k = 0; k < tv.Count; k++)
                if (Distance(tv[k], mean) <= tau) accepted.Add(k);
            m = accepted.Count == 0 ? torch.zeros_like(b) : torch.stack(accepted.Select(k => tv[k]).ToList()).mean([0]);
        }
        else
        {
            m = tv[0].clone();
            accepted.Add(0);
            for (int k = 1; k < tv.Count; k++)
            {
                if (Distance(m, tv[k]) > tau) continue;
                m = mode == "sequential_pair" ? (m + tv[k]) / 2 : m + (tv[k] - m) / (accepted.Count + 1);
                accepted.Add(k);
            }
        }
        input.Note?.Invoke($"accepted: {(accepted.Count == 0 ? "none" : string.Join(", ", accepted.Select(k => input.ModelIds[idx[k]])))}");
        return (b + lambda * m).MoveToOuterDisposeScope();
    }

    /// <summary>Cosine distance 1 − cos (norm product clamped at 1e-6's square root scale), 2 for a zero vector.</summary>
    public static double Distance(torch.Tensor a, torch.Tensor b)
    {
        double na = a.norm().ToDouble(), nb = b.norm().ToDouble();
        if (na == 0 || nb == 0) return 2;
        return 1 - Math.Clamp((a * b).sum().ToDouble() / Math.Max(na * nb, 1e-12), -1, 1);
    }
}
