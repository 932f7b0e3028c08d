// Fisher averaging, gradient matching with its limits, agreement-filtered averaging (worked examples in
// docs/methods.md), all on fixture F in float64; plus an end-to-end run loading Fishers from checkpoints.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class FisherFamilyTests
{
    private static readonly double[] F1 = [1, 0, 2, 0], F2 = [1, 1, 0, 0], F3 = [2, 1, 2, 0];
    private static torch.Tensor[] Models => [T(Theta(Tau1)), T(Theta(Tau2)), T(Theta(Tau3))];
    private static torch.Tensor[] Fishers => [T(F1), T(F2), T(F3)];

    [Theory]
    [InlineData(false, false, 1e-6, new[] { 1.25, -0.7500002, 0.2000001, 0.06666667 })]
    [InlineData(false, true, 1e-6, new[] { 1.25, -0.7500002, 0.2, 0.1 })]
    [InlineData(true, false, 1e-6, new[] { 1.152742, -0.6961134, 0.2437696, 0.07759335 })]
    [InlineData(true, true, 1e-6, new[] { 1.152742, -0.6961134, 0.2437694, 0.1 })]
    public void Fisher_table(bool normalize, bool favorTarget, double floor, double[] expected) =>
        Close(expected, Fisher.Average(Models, Fishers, [1, 1, 1], floor, normalize, favorTarget));

    [Fact]
    public void Fisher_without_floor_is_nan_where_every_fisher_is_zero()
    {
        var r = Fisher.Average(Models, Fishers, [1, 1, 1], 0, false, false);
        Close([1.25, -0.75, 0.2], r.narrow(0, 0, 3));
        Assert.True(double.IsNaN(r[3].ToDouble()));
    }

    [Fact]
    public void Gradient_matching_worked_examples()
    {
        var h0 = T(1, 1, 1, 1);
        (torch.Tensor, torch.Tensor, double)[] Tasks(double a) => Models.Select((m, i) => (m, Fishers[i], a)).ToArray();
        Close([1.32, -0.7333333, 0.18, 0.2], GradientMatching.Combine(T(Theta0), h0, Tasks(1)));
        Close([1.266667, -0.8, 0.2333333, 0.1], GradientMatching.Combine(T(Theta0), h0, Tasks(0.5)));
        // task-arithmetic limit: H_0 ≫ H_t
        Close([1.6, -0.7, 0.1, 0.2], GradientMatching.Combine(T(Theta0), T(1e9, 1e9, 1e9, 1e9), Tasks(1)));
    }

    [Fact]
    public void Gradient_matching_reduces_to_task_arithmetic_and_to_fisher_averaging()
    {
        using var gen = new torch.Generator(5);
        var b = torch.randn(30, dtype: torch.ScalarType.Float64, generator: gen);
        var xs = Enumerable.Range(0, 3).Select(_ => torch.randn(30, dtype: torch.ScalarType.Float64, generator: gen)).ToList();
        var fs = Enumerable.Range(0, 3).Select(_ => torch.rand(30, dtype: torch.ScalarType.Float64, generator: gen) + 0.1).ToList();
        double[] alpha = [0.5, 0.3, 0.2];
        // H_t → 0: task arithmetic with weights α_t
        var ta = new TaskArithmetic();
        var expectedTa = ta.Merge(Input(ta, b, xs, perModel: alpha.Select(a => (IReadOnlyDictionary<string, object>)D(("weight", a))).ToList()));
        var gmTa = GradientMatching.Combine(b, torch.ones_like(b), xs.Select((x, i) => (x, fs[i] * 1e-12, alpha[i])).ToList());
        Assert.True(gmTa.allclose(expectedTa, rtol: 0, atol: 1e-9));
        // H_0 → 0 and Σα = 1: Fisher averaging of the fine-tunes with λ = α, no normalisation, no floor
        var expectedFisher = Fisher.Average(xs, fs, alpha, 0, normalize: false, favorTarget: false);
        var gmFisher = GradientMatching.Combine(b, torch.zeros_like(b), xs.Select((x, i) => (x, fs[i], alpha[i])).ToList());
        Assert.True(gmFisher.allclose(expectedFisher, rtol: 0, atol: 1e-9));
    }

    [Theory]
    [InlineData(2.0, "sequential_mean", new[] { 1.2, -0.9, 0.3666667, 0.06666667 }, "m0, m1, m2")]
    [InlineData(2.0, "sequential_pair", new[] { 1.25, -0.9, 0.25, 0.05 }, "m0, m1, m2")]
    [InlineData(1.0, "sequential_mean", new[] { 1.45, -1.05, 0.2, 0.05 }, "m0, m2")]
    [InlineData(0.5, "sequential_mean", new[] { 1.5, -1.2, 0.5, 0.1 }, "m0")]
    [InlineData(1.0, "order_free", new[] { 1.45, -1.05, 0.2, 0.05 }, "m0, m2")]
    [InlineData(0.6, "order_free", new[] { 1.45, -1.05, 0.2, 0.05 }, "m0, m2")]
    [InlineData(0.1, "order_free", new[] { 1.0, -1.0, 0.5, 0.0 }, "none")]
    public void Agreement_table(double threshold, string mode, double[] expected, string accepted)
    {
        var m = new Agreement();
        string? note = null;
        var input = Input(m, T(Theta0), Models, D(("threshold", threshold), ("mode", mode)));
        input = new TensorMergeInput
        {
            TensorName = input.TensorName, Tensors = input.Tensors, ModelIds = input.ModelIds, PerModel = input.PerModel, Global = input.Global,
            Base = input.Base, BaseIndex = input.BaseIndex, Seed = input.Seed, Note = n => note = n,
        };
        Close(expected, m.Merge(input));
        Assert.Equal($"accepted: {accepted}", note);
    }

    [Fact]
    public void Agreement_distances_match_the_sheet()
    {
        var mean = T(0.2, 0.1, -0.4 / 3, 0.2 / 3);
        Assert.Equal(0.4112159, Agreement.Distance(T(Tau1), mean), 6);
        Assert.Equal(1.2717465, Agreement.Distance(T(Tau2), mean), 6);
        Assert.Equal(0.1310885, Agreement.Distance(T(Tau3), mean), 6);
        Assert.Equal(2.0, Agreement.Distance(T(0, 0, 0, 0), mean));
    }

    [Fact]
    public async Task Fisher_merge_loads_each_models_fisher_checkpoint_end_to_end()
    {
        using var dir = new TempDir();
        for (int i = 0; i < 3; i++)
        {
            SafetensorsFiles.Write(dir[$"m{i}.safetensors"], new Dictionary<string, torch.Tensor> { ["w"] = Models[i].to_type(torch.ScalarType.Float32) });
            SafetensorsFiles.Write(dir[$"f{i}.safetensors"], new Dictionary<string, torch.Tensor> { ["w"] = Fishers[i].to_type(torch.ScalarType.Float32) });
        }
        var recipe = RecipeParser.Parse("""
            merge_method: fisher
            models:
              - {model: m0.safetensors, parameters: {fisher: f0.safetensors}}
              - {model: m1.safetensors, parameters: {fisher: f1.safetensors}}
              - {model: m2.safetensors, parameters: {fisher: f2.safetensors}}
            parameters: {normalize_fishers: false, favor_target: true}
            """);
        Assert.Contains("f1.safetensors", recipe.AllReferences);
        await using (var sink = new LocalDirectorySink(dir["out"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None);
        Close([1.25, -0.75, 0.2, 0.1], SafetensorsFiles.Read(dir["out/model.safetensors"])["w"], 1e-5);
    }

    [Fact]
    public async Task A_fisher_checkpoint_without_the_tensor_is_rejected_naming_the_field()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["m0.safetensors"], new Dictionary<string, torch.Tensor> { ["w"] = torch.ones(4) });
        SafetensorsFiles.Write(dir["f0.safetensors"], new Dictionary<string, torch.Tensor> { ["other"] = torch.ones(4) });
        var recipe = RecipeParser.Parse("merge_method: fisher\nmodels: [{model: m0.safetensors, parameters: {fisher: f0.safetensors}}]");
        var sink = new LocalDirectorySink(dir["out"]);
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None));
        Assert.Equal("models[0].parameters.fisher", e.Field);
    }

    [Fact]
    public async Task Agreement_reports_accepted_models_per_tensor()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["base.safetensors"], new Dictionary<string, torch.Tensor> { ["w"] = T(Theta0).to_type(torch.ScalarType.Float32) });
        for (int i = 0; i < 3; i++)
            SafetensorsFiles.Write(dir[$"m{i}.safetensors"], new Dictionary<string, torch.Tensor> { ["w"] = Models[i].to_type(torch.ScalarType.Float32) });
        var recipe = RecipeParser.Parse("merge_method: agreement\nbase_model: base.safetensors\nparameters: {threshold: 1.0}\nmodels: [m0.safetensors, m1.safetensors, m2.safetensors]");
        CloudSoup.Engine.Reports.MergeReport report;
        await using (var sink = new LocalDirectorySink(dir["out"]))
            report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None);
        Assert.Equal("accepted: m0.safetensors, m2.safetensors", report.MethodNotes["w"]);
        Assert.Contains("m2.safetensors", File.ReadAllText(dir["out/report.json"]));
    }
}

public class WholeModelAgreementTests
{
    // Two tensors per model; the whole-model decision must equal the per-tensor rule applied to one tensor
    // holding the concatenation of both (the flattened whole-model task vector).
    private static readonly double[][] A = [[0.5, -0.2, 0.1, 0.0], [1.0, 0.3, -0.4, 0.2], [-0.6, 0.1, 0.2, 0.1], [0.4, -0.1, 0.0, 0.3]];
    private static readonly double[][] B = [[0.2, 0.2, -0.1], [-0.9, -0.4, 0.5], [0.3, 0.0, 0.1], [0.1, 0.1, -0.2]];

    private static async Task<(Dictionary<string, torch.Tensor> Out, CloudSoup.Engine.Reports.MergeReport Report)> Run(TempDir dir, string name, bool split, string parameters)
    {
        for (int m = 0; m < 4; m++)
        {
            var d = split
                ? new Dictionary<string, torch.Tensor> { ["a"] = torch.tensor(A[m], dtype: torch.ScalarType.Float32), ["b"] = torch.tensor(B[m], dtype: torch.ScalarType.Float32) }
                : new Dictionary<string, torch.Tensor> { ["w"] = torch.tensor(A[m].Concat(B[m]).ToArray(), dtype: torch.ScalarType.Float32) };
            SafetensorsFiles.Write(dir[$"{name}/m{m}.safetensors"], d);
        }
        var recipe = RecipeParser.Parse($"merge_method: agreement\nbase_model: m0.safetensors\nparameters: {parameters}\nmodels: [m0.safetensors, m1.safetensors, m2.safetensors, m3.safetensors]");
        CloudSoup.Engine.Reports.MergeReport report;
        await using (var sink = new LocalDirectorySink(dir[$"{name}/out"]))
            report = await new MergeJobRunner(new LocalCheckpointStore(dir[name])).RunAsync(recipe, sink, null, CancellationToken.None);
        return (SafetensorsFiles.Read(dir[$"{name}/out/model.safetensors"]), report);
    }

    [Theory]
    [InlineData("sequential_mean", 1.0)]
    [InlineData("sequential_pair", 1.0)]
    [InlineData("order_free", 0.8)]
    [InlineData("sequential_mean", 0.3)]
    public async Task Whole_model_decision_equals_the_rule_on_the_concatenated_task_vector(string mode, double threshold)
    {
        using var dir = new TempDir();
        var (whole, report) = await Run(dir, "split", true, $"{{threshold: {threshold}, mode: {mode}, granularity: model}}");
        var (concat, reference) = await Run(dir, "concat", false, $"{{threshold: {threshold}, mode: {mode}}}");
        var joined = torch.cat([whole["a"], whole["b"]]);
        Assert.True(joined.allclose(concat["w"], rtol: 0, atol: 1e-6), $"{joined.str()} vs {concat["w"].str()}");
        Assert.Equal(reference.MethodNotes["w"], report.MethodNotes["(whole model)"].Split(" (whole model")[0]);
    }

    [Fact]
    public async Task Whole_model_and_per_tensor_decisions_can_differ_and_the_report_says_which()
    {
        using var dir = new TempDir();
        // Cosine distances to the mean task vector (numpy): a 0.617, 0.339, 0.185; b 0.014, 0.558, 0.526;
        // whole model 0.239, 0.495, 0.361. At threshold 0.4 the three decisions all differ.
        var (_, perTensor) = await Run(dir, "t", true, "{threshold: 0.4, mode: order_free}");
        var (_, whole) = await Run(dir, "m", true, "{threshold: 0.4, mode: order_free, granularity: model}");
        Assert.Equal("accepted: m2.safetensors, m3.safetensors", perTensor.MethodNotes["a"]);
        Assert.Equal("accepted: m1.safetensors", perTensor.MethodNotes["b"]);
        Assert.Single(whole.MethodNotes);
        Assert.StartsWith("accepted: m1.safetensors, m3.safetensors (whole model", whole.MethodNotes["(whole model)"]);
    }

    [Fact]
    public void An_unknown_granularity_is_rejected_naming_the_field()
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(
            "merge_method: agreement\nbase_model: a.safetensors\nparameters: {granularity: layer}\nmodels: [a.safetensors, b.safetensors, c.safetensors]"));
        Assert.Contains("granularity", e.Field);
    }
}
