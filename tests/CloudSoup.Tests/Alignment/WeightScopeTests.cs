// Weight scope alignment (Xu et al. 2024, arXiv 2408.12237; docs/alignment.md): the worked example, the
// re-scoping's properties, and a
// job (scope_alignment + linear) checked against the formula computed here in float64.
using CloudSoup.Engine.Alignment;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Alignment;

public class WeightScopeTests
{
    [Fact]
    public void Worked_example_scope_and_moment_fusion()
    {
        var s = WeightScope.Measure(torch.tensor(new[] { 0.1, -0.2, 0.3, 0.0 }));
        Assert.Equal(0.05, s.Mean, 9);
        Assert.Equal(0.1802776, s.Std, 6);
        var fused = WeightScope.Fuse([new Scope(0.05, 0.18), new Scope(-0.05, 0.10)], [1, 1], "moment");
        Assert.Equal(0, fused.Mean, 12);
        Assert.Equal(0.1539480, fused.Std, 6);
        var mean = WeightScope.Fuse([new Scope(0.05, 0.18), new Scope(-0.05, 0.10)], [3, 1], "mean");
        Assert.Equal(0.025, mean.Mean, 12);
        Assert.Equal(0.16, mean.Std, 12);
    }

    [Fact]
    public void Rescoped_layers_have_the_target_scope_and_constant_layers_are_only_shifted()
    {
        torch.manual_seed(1);
        var w = torch.randn(64, 32) * 3 + 0.5;
        var target = new Scope(-0.1, 0.02);
        var r = WeightScope.Rescope(w, WeightScope.Measure(w), target, 1e-12);
        var after = WeightScope.Measure(r);
        Assert.Equal(target.Mean, after.Mean, 5);
        Assert.Equal(target.Std, after.Std, 5);
        Assert.Equal(w.dtype, r.dtype);
        Assert.Equal(w.shape, r.shape);

        var flat = torch.full(5, 2.0f);
        var shifted = WeightScope.Rescope(flat, WeightScope.Measure(flat), target, 1e-12);
        Assert.True(shifted.isfinite().all().ToBoolean());
        Assert.True(shifted.allclose(torch.full(5, -0.1f)));
    }

    [Fact]
    public async Task A_job_rescopes_each_model_before_merging_and_reports_every_layer()
    {
        using var dir = new TempDir();
        torch.manual_seed(2);
        var a = new Dictionary<string, torch.Tensor> { ["fc.weight"] = torch.randn(8, 4) * 0.1, ["fc.bias"] = torch.randn(8) };
        var b = new Dictionary<string, torch.Tensor> { ["fc.weight"] = torch.randn(8, 4) * 2 + 1, ["fc.bias"] = torch.randn(8) };
        SafetensorsFiles.Write(dir["a.safetensors"], a);
        SafetensorsFiles.Write(dir["b.safetensors"], b);
        var recipe = RecipeParser.Parse("merge_method: linear\nmodels: [a.safetensors, b.safetensors]\nscope_alignment: {enabled: true, weights: [1, 3]}");
        CloudSoup.Engine.Reports.MergeReport report;
        await using (var sink = new LocalDirectorySink(dir["out"]))
            report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None);
        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);

        // Independent float64 computation: population moments, moment fusion with p = (1/4, 3/4), affine re-scoping.
        double[] A = a["fc.weight"].to_type(torch.ScalarType.Float64).flatten().data<double>().ToArray();
        double[] B = b["fc.weight"].to_type(torch.ScalarType.Float64).flatten().data<double>().ToArray();
        (double M, double S) Moments(double[] x) { double m = x.Average(); return (m, Math.Sqrt(x.Select(v => (v - m) * (v - m)).Average())); }
        var (ma, sa) = Moments(A);
        var (mb, sb) = Moments(B);
        double mt = 0.25 * ma + 0.75 * mb;
        double st = Math.Sqrt(0.25 * (sa * sa + ma * ma) + 0.75 * (sb * sb + mb * mb) - mt * mt);
        var expected = A.Select((v, i) => 0.5 * ((mt + (v - ma) * st / sa) + (mt + (B[i] - mb) * st / sb))).ToArray();
        var got = merged["fc.weight"].to_type(torch.ScalarType.Float64).flatten().data<double>().ToArray();
        for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) < 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"{i}: {got[i]} vs {expected[i]}");
        // Biases are vectors: not re-scoped with the default layers: matrices.
        Assert.True(merged["fc.bias"].allclose((a["fc.bias"] + b["fc.bias"]) / 2, rtol: 1e-6, atol: 1e-6));

        var layer = Assert.Single(report.ScopeAlignment!.Tensors);
        Assert.Equal("fc.weight", layer.Tensor);
        Assert.Equal(st, layer.Target.Std, 5);
        foreach (var m in layer.Models)
        {
            Assert.Equal(layer.Target.Mean, m.After.Mean, 5);
            Assert.Equal(layer.Target.Std, m.After.Std, 5);
        }
        Assert.Contains("Weight scope alignment", File.ReadAllText(dir["out/report.html"]));
        Assert.Contains("scope_alignment", report.PhaseSeconds.Keys);
    }

    [Theory]
    [InlineData("scope_alignment: {enabled: true, fusion: median}", "scope_alignment.fusion")]
    [InlineData("scope_alignment: {enabled: true, weights: [1]}", "scope_alignment.weights")]
    [InlineData("scope_alignment: {enabled: true, target: 0}", "scope_alignment.target")]
    [InlineData("scope_alignment: {enabled: maybe}", "scope_alignment.enabled")]
    [InlineData("scope_alignment: {layers: rows}", "scope_alignment.layers")]
    public void Bad_sections_are_rejected_naming_the_field(string section, string field)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse($"merge_method: linear\nmodels: [a.safetensors, b.safetensors]\n{section}"));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Disabled_means_absent_and_the_section_round_trips()
    {
        Assert.Null(RecipeParser.Parse("merge_method: linear\nmodels: [a.safetensors, b.safetensors]\nscope_alignment: {enabled: false}").ScopeAlignment);
        var r = RecipeParser.Parse("merge_method: linear\nmodels: [a.safetensors, b.safetensors]\nscope_alignment: {enabled: true, fusion: mean, weights: [2, 1], layers: all}");
        Assert.Equal(RecipeJson.ToJsonString(r), RecipeJson.ToJsonString(RecipeParser.Parse(RecipeJson.ToJsonString(r))));
    }
}
