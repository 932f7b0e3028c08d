// Diagonal Fisher (Evaluation/FisherEstimator.cs) against closed forms for a linear softmax classifier, where
// ∇_W log p(y|x) = (e_y − p) xᵀ and ∇_b log p(y|x) = e_y − p, computed here in float64 without autograd; plus the
// in-job `fisher:` section, which must give the same merge as Fisher files computed beforehand.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Evaluation;

public class FisherEstimatorTests
{
    private const int D = 5, C = 3, N = 7;

    private static (Dictionary<string, torch.Tensor> Weights, EvalData Data, double[,] W, double[] B, double[][] X, long[] Y) Problem(int seed)
    {
        var rng = new Random(seed);
        var w = new double[C, D];
        var b = new double[C];
        for (int c = 0; c < C; c++) { b[c] = rng.NextDouble() - 0.5; for (int d = 0; d < D; d++) w[c, d] = 2 * rng.NextDouble() - 1; }
        var x = Enumerable.Range(0, N).Select(_ => Enumerable.Range(0, D).Select(_ => 2 * rng.NextDouble() - 1).ToArray()).ToArray();
        var y = Enumerable.Range(0, N).Select(_ => (long)rng.Next(C)).ToArray();
        var weights = new Dictionary<string, torch.Tensor>
        {
            ["fc1.weight"] = torch.tensor(Enumerable.Range(0, C * D).Select(i => (float)w[i / D, i % D]).ToArray(), [C, D]),
            ["fc1.bias"] = torch.tensor(b.Select(v => (float)v).ToArray()),
        };
        var data = new EvalData(torch.tensor(x.SelectMany(r => r.Select(v => (float)v)).ToArray(), [N, D]), torch.tensor(y), "test");
        return (weights, data, w, b, x, y);
    }

    private static double[] Softmax(double[,] w, double[] b, double[] x)
    {
        var z = Enumerable.Range(0, C).Select(c => b[c] + Enumerable.Range(0, D).Sum(d => w[c, d] * x[d])).ToArray();
        double max = z.Max();
        var e = z.Select(v => Math.Exp(v - max)).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    /// <summary>1/N Σ_n Σ_y q_n(y) (∇ log p(y|x_n))² in closed form, for label weights q.</summary>
    private static (double[,] FW, double[] FB) Closed(double[,] w, double[] b, double[][] xs, Func<int, double[], double[]> q)
    {
        var fw = new double[C, D];
        var fb = new double[C];
        for (int n = 0; n < xs.Length; n++)
        {
            var p = Softmax(w, b, xs[n]);
            var qn = q(n, p);
            for (int y = 0; y < C; y++)
            {
                if (qn[y] == 0) continue;
                for (int c = 0; c < C; c++)
                {
                    double g = (c == y ? 1 : 0) - p[c];
                    fb[c] += qn[y] * g * g / xs.Length;
                    for (int d = 0; d < D; d++) fw[c, d] += qn[y] * g * g * xs[n][d] * xs[n][d] / xs.Length;
                }
            }
        }
        return (fw, fb);
    }

    private static void Same(double[,] fw, double[] fb, Dictionary<string, torch.Tensor> got)
    {
        var w = got["fc1.weight"].to_type(torch.ScalarType.Float64);
        var b = got["fc1.bias"].to_type(torch.ScalarType.Float64);
        for (int c = 0; c < C; c++)
        {
            Assert.Equal(fb[c], b[c].ToDouble(), 5);
            for (int d = 0; d < D; d++) Assert.Equal(fw[c, d], w[c, d].ToDouble(), 5);
        }
    }

    private static Dictionary<string, torch.Tensor> Run(Dictionary<string, torch.Tensor> weights, EvalData data, FisherOptions options)
    {
        using var model = BuiltinModel.Create("builtin:mlp");
        model.LoadWeights(weights, "test");
        return FisherEstimator.Estimate(model, weights, data, options, null, CancellationToken.None);
    }

    [Fact]
    public void Empirical_fisher_matches_the_closed_form_with_per_example_gradients()
    {
        var (weights, data, w, b, x, y) = Problem(1);
        var (fw, fb) = Closed(w, b, x, (n, _) => Enumerable.Range(0, C).Select(c => c == y[n] ? 1.0 : 0).ToArray());
        Same(fw, fb, Run(weights, data, new FisherOptions(FisherLabels.Empirical, 100)));
    }

    [Fact]
    public void Exact_fisher_weights_every_class_by_its_probability()
    {
        var (weights, data, w, b, x, _) = Problem(2);
        var (fw, fb) = Closed(w, b, x, (_, p) => p);
        Same(fw, fb, Run(weights, data, new FisherOptions(FisherLabels.Exact, 100)));
    }

    [Fact]
    public void Argmax_fisher_uses_the_predicted_class()
    {
        var (weights, data, w, b, x, _) = Problem(3);
        var (fw, fb) = Closed(w, b, x, (_, p) => Enumerable.Range(0, C).Select(c => c == Array.IndexOf(p, p.Max()) ? 1.0 : 0).ToArray());
        Same(fw, fb, Run(weights, data, new FisherOptions(FisherLabels.Argmax, 100)));
    }

    [Fact]
    public void It_is_not_the_square_of_the_mean_gradient_and_samples_limits_the_examples()
    {
        var (weights, data, w, b, x, y) = Problem(4);
        // (1/N Σ g_n)² for the empirical labels: what a batch gradient squared would give.
        var meanB = new double[C];
        for (int n = 0; n < N; n++)
        {
            var p = Softmax(w, b, x[n]);
            for (int c = 0; c < C; c++) meanB[c] += ((c == y[n] ? 1 : 0) - p[c]) / N;
        }
        var got = Run(weights, data, new FisherOptions(FisherLabels.Empirical, 100));
        Assert.Contains(Enumerable.Range(0, C), c => Math.Abs(got["fc1.bias"][c].ToDouble() - meanB[c] * meanB[c]) > 1e-3);

        var (fw3, fb3) = Closed(w, b, x.Take(3).ToArray(), (n, _) => Enumerable.Range(0, C).Select(c => c == y[n] ? 1.0 : 0).ToArray());
        Same(fw3, fb3, Run(weights, data, new FisherOptions(FisherLabels.Empirical, 3)));
    }

    [Fact]
    public void Sampled_fisher_is_reproducible_by_seed_and_converges_to_the_exact_one()
    {
        var (weights, _, w, b, _, _) = Problem(5);
        // One input repeated: the sampled estimate averages draws from p, so it approaches the exact Fisher.
        var rng = new Random(9);
        var x0 = Enumerable.Range(0, D).Select(_ => 2 * rng.NextDouble() - 1).ToArray();
        const int many = 4000;
        var data = new EvalData(torch.tensor(Enumerable.Repeat(x0, many).SelectMany(r => r.Select(v => (float)v)).ToArray(), [many, D]), torch.zeros(many, torch.ScalarType.Int64), "test");
        var a = Run(weights, data, new FisherOptions(FisherLabels.Sampled, many, Seed: 1));
        var again = Run(weights, data, new FisherOptions(FisherLabels.Sampled, many, Seed: 1));
        var other = Run(weights, data, new FisherOptions(FisherLabels.Sampled, many, Seed: 2));
        Assert.True(a["fc1.bias"].eq(again["fc1.bias"]).all().ToBoolean());
        Assert.False(a["fc1.bias"].eq(other["fc1.bias"]).all().ToBoolean());
        var (_, fb) = Closed(w, b, [x0], (_, p) => p);
        for (int c = 0; c < C; c++) Assert.True(Math.Abs(a["fc1.bias"][c].ToDouble() - fb[c]) < 0.05 * fb.Max(), $"class {c}: {a["fc1.bias"][c].ToDouble()} vs {fb[c]}");
    }

    [Fact]
    public async Task A_fisher_section_computes_the_fishers_in_the_job_and_gives_the_same_merge_as_precomputed_files()
    {
        using var dir = new TempDir();
        var (w1, data, _, _, _, _) = Problem(6);
        var (w2, _, _, _, _, _) = Problem(7);
        SafetensorsFiles.Write(dir["a.safetensors"], w1);
        SafetensorsFiles.Write(dir["b.safetensors"], w2);
        SafetensorsFiles.Write(dir["data.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = data.Inputs, ["labels"] = data.Labels });
        var options = new FisherOptions(FisherLabels.Exact, 100);
        SafetensorsFiles.Write(dir["fa.safetensors"], Run(w1, data, options));
        SafetensorsFiles.Write(dir["fb.safetensors"], Run(w2, data, options));

        CloudSoup.Engine.Reports.MergeReport report;
        await using (var sink = new LocalDirectorySink(dir["computed"]))
            report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse("""
                merge_method: fisher
                models: [a.safetensors, b.safetensors]
                fisher: {model: builtin:mlp, data: data.safetensors, labels: exact}
                """), sink, null, CancellationToken.None);
        await using (var sink = new LocalDirectorySink(dir["files"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse("""
                merge_method: fisher
                models: [{model: a.safetensors, parameters: {fisher: fa.safetensors}}, {model: b.safetensors, parameters: {fisher: fb.safetensors}}]
                """), sink, null, CancellationToken.None);

        var computed = SafetensorsFiles.Read(dir["computed/model.safetensors"]);
        var files = SafetensorsFiles.Read(dir["files/model.safetensors"]);
        foreach (var (name, t) in files) Assert.True(t.allclose(computed[name], rtol: 1e-6, atol: 1e-7), name);
        Assert.Equal(["a.safetensors", "b.safetensors"], report.Fishers!.Select(f => f.Model));
        var written = SafetensorsFiles.Read(dir["computed/fisher.a.safetensors"]);
        Assert.True(written["fc1.weight"].allclose(SafetensorsFiles.Read(dir["fa.safetensors"])["fc1.weight"]));
        Assert.Contains("fisher", report.PhaseSeconds.Keys);
    }

    [Theory]
    [InlineData("merge_method: linear\nmodels: [a.safetensors]\nfisher: {model: builtin:mlp, data: d.safetensors}", "fisher")]
    [InlineData("merge_method: fisher\nmodels: [a.safetensors, b.safetensors]\nfisher: {model: builtin:mlp, data: d.safetensors, labels: soft}", "fisher.labels")]
    [InlineData("merge_method: fisher\nmodels: [a.safetensors, b.safetensors]\nfisher: {model: builtin:mlp}", "fisher.data")]
    [InlineData("merge_method: fisher\nmodels: [a.safetensors, b.safetensors]\nfisher: {model: builtin:mlp, data: d.safetensors, samples: 0}", "fisher.samples")]
    [InlineData("merge_method: fisher\nmodels: [a.safetensors, b.safetensors]", "models[0].parameters.fisher")]
    public void Fisher_recipes_without_a_way_to_get_fishers_or_with_bad_values_are_rejected(string recipe, string field)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(recipe));
        Assert.Equal(field, e.Field);
    }
}
