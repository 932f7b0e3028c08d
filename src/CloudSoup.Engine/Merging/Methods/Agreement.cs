// agreement: agreement-filtered averaging (AFA), CloudSoup's transfer of Gradient Agreement Filtering
// (Chaubard, Eddy, Kochenderfer 2024, arXiv 2412.18052) to merging — docs/methods.md "agreement".
// A task vector joins the merge only if
// its cosine distance 1 − cos to the reference is ≤ threshold:
//   sequential_mean: m ← τ_1; accept τ_k against the running mean m, m ← m + (τ_k − m)/(n+1)
//   sequential_pair: the same but m ← (m + τ_k)/2, exactly GAF's update
//   order_free:      m̄ = mean of all τ; accept τ_k against m̄; average the accepted ones
// A zero vector has undefined cosine: its distance is 2 (rejected unless threshold = 2). If nothing is
// accepted in order_free mode the result is the base (GAF skips the step). Accepted models are reported.
//
// Every reference above is a linear combination m = Σ c_j τ_j, so each cosine needs only the Gram matrix
// G_ij = ⟨τ_i, τ_j⟩: cos(m, τ_k) = (Gc)_k / sqrt(cᵀGc · G_kk). The decision is therefore one function of G,
// which lets `granularity: model` decide once for the whole model (G summed over every merged tensor in a
// pre-pass, AgreementPrepass) and `granularity: tensor` decide per tensor, with the same rule.
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

/// <summary>The outcome of the agreement rule: which task vectors were accepted and the mixing coefficients c.</summary>
public sealed record AgreementDecision(IReadOnlyList<int> Accepted, double[] Coefficients);

public sealed class Agreement : IMergeMethod, IWholeModelPrepass
{
    public MethodSignature Signature => PaperMethods.Agreement;

    private readonly AgreementDecision? _fixed;

    public Agreement() { }

    /// <summary>A whole-model decision made beforehand (granularity: model): every tensor uses these coefficients.</summary>
    public Agreement(AgreementDecision decision) => _fixed = decision;

    /// <summary>True when the recipe asks for a whole-model decision (the job runs AgreementPrepass first).</summary>
    public bool NeedsPrepass(MergePlan plan) => _fixed is null && plan.Tensors.Any(t => t.Merge && WholeModel(t.Global));

    public Task<(MergePlan Plan, string Note)> RunPrepassAsync(MergePlan plan, IProgress<JobProgress>? progress, CancellationToken ct) =>
        AgreementPrepass.RunAsync(plan, progress, ct);

    public string? SaveDecision() => _fixed is null ? null : System.Text.Json.JsonSerializer.Serialize(_fixed, PrepassJson.Options);

    public IMergeMethod WithDecision(string json) =>
        new Agreement(System.Text.Json.JsonSerializer.Deserialize<AgreementDecision>(json, PrepassJson.Options) ?? throw new InvalidDataException("the agreement decision is JSON null"));

    private static bool WholeModel(ResolvedParameters global) => PaperMethods.WholeModelAgreement(global);

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        double lambda = input.Global.Number("lambda");
        using var scope = torch.NewDisposeScope();
        var idx = Enumerable.Range(0, input.Tensors.Count).Where(i => i != input.BaseIndex).ToList();
        var tv = idx.Select(i => input.Tensors[i].to_type(torch.ScalarType.Float64) - b.to_type(torch.ScalarType.Float64)).ToList();
        AgreementDecision decision;
        if (_fixed != null)
        {
            if (_fixed.Coefficients.Length != tv.Count)
                throw new InvalidOperationException($"agreement: the whole-model decision covers {_fixed.Coefficients.Length} task vectors but '{input.TensorName}' has {tv.Count}");
            decision = _fixed;
        }
        else
        {
            if (WholeModel(input.Global))
                throw new InvalidOperationException("agreement with granularity: model needs the job's pre-pass (AgreementPrepass); it cannot decide per tensor");
            decision = Decide(Gram(tv), input.Global.Text("mode"), input.Global.Number("threshold"));
            input.Note?.Invoke(Describe(decision, idx.Select(i => input.ModelIds[i]).ToList()));
        }
        var m = torch.zeros_like(tv[0]);
        for (int k = 0; k < tv.Count; k++)
            if (decision.Coefficients[k] != 0) m += decision.Coefficients[k] * tv[k];
        return (b + (lambda * m).to_type(b.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>G_ij = ⟨τ_i, τ_j⟩ in float64.</summary>
    public static double[,] Gram(IReadOnlyList<torch.Tensor> taskVectors)
    {
        int k = taskVectors.Count;
        var g = new double[k, k];
        using var scope = torch.NewDisposeScope();
        var flat = torch.stack(taskVectors.Select(t => t.flatten().to_type(torch.ScalarType.Float64)).ToList());
        var gram = flat.matmul(flat.t()).cpu();
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                g[i, j] = gram[i, j].ToDouble();
        return g;
    }

    /// <summary>The agreement rule on a Gram matrix (see the header).</summary>
    public static AgreementDecision Decide(double[,] gram, string mode, double threshold)
    {
        int n = gram.GetLength(0);
        var accepted = new List<int>();
        var c = new double[n];
        if (mode == "order_free")
        {
            var mean = Enumerable.Repeat(1.0 / n, n).ToArray();
            for (int k = 0; k < n; k++)
                if (Distance(gram, mean, k) <= threshold) accepted.Add(k);
            foreach (int k in accepted) c[k] = 1.0 / accepted.Count;
        }
        else
        {
            c[0] = 1;
            accepted.Add(0);
            for (int k = 1; k < n; k++)
            {
                if (Distance(gram, c, k) > threshold) continue;
                if (mode == "sequential_pair")
                {
                    for (int j = 0; j < n; j++) c[j] /= 2;
                    c[k] += 0.5;
                }
                else
                {
                    double step = 1.0 / (accepted.Count + 1);
                    for (int j = 0; j < n; j++) c[j] -= step * c[j];
                    c[k] += step;
                }
                accepted.Add(k);
            }
        }
        return new AgreementDecision(accepted, c);
    }

    /// <summary>Cosine distance between m = Σ c_j τ_j and τ_k from the Gram matrix; 2 when either is zero.</summary>
    private static double Distance(double[,] g, double[] c, int k)
    {
        int n = c.Length;
        double mm = 0, mk = 0;
        for (int i = 0; i < n; i++)
        {
            mk += c[i] * g[i, k];
            for (int j = 0; j < n; j++) mm += c[i] * c[j] * g[i, j];
        }
        double kk = g[k, k];
        if (mm <= 0 || kk <= 0) return 2;
        return 1 - Math.Clamp(mk / Math.Max(Math.Sqrt(mm) * Math.Sqrt(kk), 1e-12), -1, 1);
    }

    public static string Describe(AgreementDecision decision, IReadOnlyList<string> modelIds) =>
        $"accepted: {(decision.Accepted.Count == 0 ? "none" : string.Join(", ", decision.Accepted.Select(k => modelIds[k])))}";

    /// <summary>Cosine distance 1 − cos (norm product clamped at 1e-12), 2 for a zero vector.</summary>
    public static double Distance(torch.Tensor a, torch.Tensor b)
    {
        double na = a.norm().ToDouble(), nb = b.norm().ToDouble();
        if (na == 0 || nb == 0) return 2;
        return 1 - Math.Clamp((a * b).sum().ToDouble() / Math.Max(na * nb, 1e-12), -1, 1);
    }
}
