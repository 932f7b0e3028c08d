// Learned soup (Wortsman et al. 2022, arXiv 2203.05482, App. I; mlfoundations/model-soups learned_bylayer.py):
// mixing coefficients α = softmax(logits) over the ingredients, one vector for the whole model or one per tensor
// (by_layer), initialised uniform and fitted to the held-out split.
//   builtin:mlp / builtin:cnn: gradient descent (Adam, lr) on the held-out cross-entropy, by autograd through the
//     built-in functional forward pass with weights Σ α_i θ_i rebuilt every step (mini-batches of batch_size).
//   TorchScript models: the module's weights cannot carry a graph back to α, so the search is derivative-free:
//     coordinate search in logit space (each logit ±δ, δ starting at 1 and halving after a sweep without
//     improvement), accepting a move when the full held-out cross-entropy falls; `steps` bounds the trials.
// Unlike the paper there is no learned temperature β (it only rescales the logits here).
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Methods;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Jobs;
using TorchSharp;
using static TorchSharp.torch.nn.functional;

namespace CloudSoup.Engine.Soups;

public sealed class LearnedSoup : ISoup
{
    public MethodSignature Signature => SoupMethods.Learned;

    public SoupChoice Choose(SoupSearch search, SoupContext context)
    {
        var learned = Learn(search, Signature.Bool(context.Recipe, "by_layer"), (int)Signature.Number(context.Recipe, "steps"), Signature.Number(context.Recipe, "lr"),
            context.Steps, context.Progress, context.Ct);
        int k = search.Models.Count;
        if (learned.Coefficients.GetLength(0) == 1)
            return new(Enumerable.Range(0, k).Select(i => learned.Coefficients[0, i]).ToArray(), learned.Rule);
        // Per tensor; the per-model summary is the mean over tensors.
        var mixed = search.MixedTensors;
        var perTensor = mixed.Select((n, t) => (n, t)).ToDictionary(x => x.n,
            x => (IReadOnlyDictionary<string, double>)Enumerable.Range(0, k).ToDictionary(i => search.Models[i], i => learned.Coefficients[x.t, i]));
        return new(Enumerable.Range(0, k).Select(i => Enumerable.Range(0, mixed.Count).Average(t => learned.Coefficients[t, i])).ToArray(), learned.Rule, perTensor);
    }

    internal sealed record Result(double[,] Coefficients, string Rule);

    internal static Result Learn(SoupSearch s, bool byLayer, int steps, double lr, List<SoupStep> log, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        int k = s.Models.Count, rows = byLayer ? s.MixedTensors.Count : 1;
        var start = s.Evaluate(Enumerable.Repeat(1.0 / k, k).ToArray());   // also loads the architecture's layout
        log.Add(new SoupStep(0, "start", null, start.Accuracy, start.Loss, true, k));
        return s.Model is BuiltinModel builtin && !ForceDerivativeFree
            ? Gradient(s, builtin, rows, steps, lr, log, progress, ct)
            : DerivativeFree(s, rows, steps, log, progress, ct);
    }

    /// <summary>Tests use this to exercise the TorchScript path on a built-in model.</summary>
    internal static bool ForceDerivativeFree { get; set; }

    private static Result Gradient(SoupSearch s, BuiltinModel model, int rows, int steps, double lr, List<SoupStep> log, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        int k = s.Models.Count;
        var logits = new TorchSharp.Modules.Parameter(torch.zeros(rows, k));
        using var optimizer = torch.optim.Adam([logits], lr);
        long n = s.HeldOut.Count;
        int logEvery = Math.Max(1, steps / 20);
        for (int step = 1; step <= steps; step++)
        {
            ct.ThrowIfCancellationRequested();
            using (var scope = torch.NewDisposeScope())
            {
                long begin = (long)(step - 1) * s.BatchSize % n, len = Math.Min(s.BatchSize, n - begin);
                optimizer.zero_grad();
                var alpha = softmax(logits, 1);
                var weights = new Dictionary<string, torch.Tensor>(s.Ingredients[0], StringComparer.Ordinal);
                for (int t = 0; t < s.MixedTensors.Count; t++)
                {
                    var name = s.MixedTensors[t];
                    var row = alpha[rows == 1 ? 0 : t];
                    var mixed = s.Ingredients[0][name] * row[0];
                    for (int i = 1; i < k; i++) mixed = mixed + s.Ingredients[i][name] * row[i];
                    weights[name] = mixed;
                }
                var loss = cross_entropy(model.Forward(weights, s.HeldOut.Inputs.narrow(0, begin, len)), s.HeldOut.Labels.narrow(0, begin, len));
                loss.backward();
                optimizer.step();
            }
            if (step % logEvery == 0 || step == steps)
            {
                var c = Softmax(logits);
                var m = s.Evaluate((_, t) => Row(c, rows == 1 ? 0 : t));
                log.Add(new SoupStep(step, "learn", null, m.Accuracy, m.Loss, true, k));
                progress?.Report(new JobProgress(JobPhase.Soup, 0.5 + 0.5 * step / steps, $"learned soup: step {step}/{steps}"));
            }
        }
        var result = Softmax(logits);
        logits.Dispose();
        return new Result(result, $"learned by gradient: α = softmax(logits){(rows > 1 ? " per tensor" : "")}, Adam lr {lr} for {steps} steps on held-out cross-entropy");
    }

    private static Result DerivativeFree(SoupSearch s, int rows, int steps, List<SoupStep> log, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        int k = s.Models.Count;
        var z = new double[rows, k];
        var best = s.Evaluate((_, t) => Row(SoftmaxRows(z), rows == 1 ? 0 : t));
        double delta = 1.0;
        int trials = 0;
        while (trials < steps && delta > 1e-3)
        {
            bool improved = false;
            for (int r = 0; r < rows && trials < steps; r++)
                for (int i = 0; i < k && trials < steps; i++)
                    foreach (int sign in new[] { 1, -1 })
                    {
                        ct.ThrowIfCancellationRequested();
                        if (trials >= steps) break;
                        z[r, i] += sign * delta;
                        var c = SoftmaxRows(z);
                        var m = s.Evaluate((_, t) => Row(c, rows == 1 ? 0 : t));
                        trials++;
                        if (m.Loss < best.Loss)
                        {
                            best = m;
                            improved = true;
                            log.Add(new SoupStep(trials, "learn", s.Models[i], m.Accuracy, m.Loss, true, k));
                            break;
                        }
                        z[r, i] -= sign * delta;
                    }
            progress?.Report(new JobProgress(JobPhase.Soup, 0.5 + 0.5 * trials / steps, $"learned soup: trial {trials}/{steps}"));
            if (!improved) delta /= 2;
        }
        return new Result(SoftmaxRows(z), $"learned derivative-free (TorchScript model): coordinate search on softmax logits{(rows > 1 ? " per tensor" : "")}, {trials} trials on held-out cross-entropy");
    }

    private static double[] Row(double[,] c, int r) => Enumerable.Range(0, c.GetLength(1)).Select(i => c[r, i]).ToArray();

    private static double[,] Softmax(torch.Tensor logits)
    {
        using var _ = torch.no_grad();
        using var p = softmax(logits, 1).to_type(torch.ScalarType.Float64);
        var flat = p.data<double>().ToArray();
        int rows = (int)p.shape[0], k = (int)p.shape[1];
        var c = new double[rows, k];
        for (int r = 0; r < rows; r++) for (int i = 0; i < k; i++) c[r, i] = flat[r * k + i];
        return c;
    }

    private static double[,] SoftmaxRows(double[,] z)
    {
        int rows = z.GetLength(0), k = z.GetLength(1);
        var c = new double[rows, k];
        for (int r = 0; r < rows; r++)
        {
            double max = Enumerable.Range(0, k).Max(i => z[r, i]), sum = 0;
            for (int i = 0; i < k; i++) sum += c[r, i] = Math.Exp(z[r, i] - max);
            for (int i = 0; i < k; i++) c[r, i] /= sum;
        }
        return c;
    }
}
