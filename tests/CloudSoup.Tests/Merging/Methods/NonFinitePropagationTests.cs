// The task-arithmetic family declares that every non-finite input element leaves its output element non-finite
// (INonFinitePropagating), so the executor checks only the output of a finite merge. This holds the family to it:
// for every method, with entries dropped by the trim or the mask, zero weights and λ = 0, on both the fused and the
// tensor path, an infinity or NaN in any input (the base included) makes that output element NaN or infinite.
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class NonFinitePropagationTests
{
    public static TheoryData<string, bool> Cases()
    {
        var data = new TheoryData<string, bool>();
        foreach (var m in new[] { "task_arithmetic", "ties", "breadcrumbs", "breadcrumbs_ties", "dare_ties", "dare_linear", "della", "della_linear" })
            foreach (bool fused in new[] { true, false })
                data.Add(m, fused);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_non_finite_input_element_leaves_its_output_element_non_finite(string name, bool fused)
    {
        foreach (double lambda in new[] { 1.0, 0.0 })
            foreach (double weight in new[] { 0.7, 0.0 })
                foreach (float bad in new[] { float.PositiveInfinity, float.NegativeInfinity, float.NaN })
                    foreach (int model in new[] { 0, 1, 3 })   // 0 is the base
                    {
                        var gen = new torch.Generator(3);
                        var b = torch.randn(64, 33, generator: gen);
                        var others = Enumerable.Range(0, 3).Select(_ => b + 0.1 * torch.randn(64, 33, generator: gen)).ToList();
                        var target = model == 0 ? b : others[model - 1];
                        target[5, 7] = bad;    // tiny magnitudes are trimmed or dropped; an infinity is the largest
                        target[40, 2] = bad;
                        var method = TaskVectorMethod(name, fused);
                        var perModel = Enumerable.Range(0, 3).Select(i => (IReadOnlyDictionary<string, object>)(name.StartsWith("breadcrumbs")
                            ? D(("weight", i == 1 ? weight : 1.0), ("density", 0.3), ("gamma", 0.05))
                            : name == "task_arithmetic" ? D(("weight", i == 1 ? weight : 1.0)) : D(("weight", i == 1 ? weight : 1.0), ("density", 0.3)))).ToList();
                        using var merged = method.Merge(Input(method, b, others, new Dictionary<string, object> { ["lambda"] = lambda }, perModel, seed: 4));
                        foreach (var (r, c) in new[] { (5L, 7L), (40L, 2L) })
                            Assert.False(float.IsFinite(merged[r, c].ToSingle()),
                                $"{name} (fused {fused}, λ {lambda}, weight {weight}): {bad} in input {model} at [{r},{c}] gave a finite output");
                    }
    }
}
