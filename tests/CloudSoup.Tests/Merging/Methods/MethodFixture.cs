// Builds float64 TensorMergeInputs for unit tests of merge methods, and holds fixture F
// (docs/methods.md, "Test fixture F and worked examples").
using CloudSoup.Control.Methods;
using CloudSoup.Engine.Merging;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Tests.Merging.Methods;

public static class MethodFixture
{
    public static readonly double[] Theta0 = [1.0, -1.0, 0.5, 0.0];
    public static readonly double[] Tau1 = [0.5, -0.2, 0.0, 0.1];
    public static readonly double[] Tau2 = [-0.3, 0.4, 0.2, 0.1];
    public static readonly double[] Tau3 = [0.4, 0.1, -0.6, 0.0];
    public static double[] Theta(double[] tau) => Theta0.Zip(tau, (a, b) => a + b).ToArray();

    public static torch.Tensor T(params double[] v) => torch.tensor(v, dtype: torch.ScalarType.Float64);

    /// <summary>Resolves a method's parameters the way the planner does: the given value, else the spec default.</summary>
    public static ResolvedParameters Params(IMergeMethod method, bool perModel, IReadOnlyDictionary<string, object>? given)
    {
        var values = new Dictionary<string, ParameterValue>();
        foreach (var spec in method.Parameters.Where(p => p.PerModel == perModel))
        {
            object? v = given != null && given.TryGetValue(spec.Name, out var g) ? g : spec.Default;
            if (v is null) continue;
            values[spec.Name] = v switch { bool b => ParameterValue.Of(b), double d => ParameterValue.Of(d), int i => ParameterValue.Of(i), _ => ParameterValue.Of(v.ToString()!) };
        }
        return new ResolvedParameters(values);
    }

    /// <summary>
    /// An input whose model 0 is the base (when <paramref name="baseTensor"/> is given) followed by the others;
    /// <paramref name="perModel"/> lists the others' parameters.
    /// </summary>
    public static TensorMergeInput Input(IMergeMethod method, torch.Tensor? baseTensor, IReadOnlyList<torch.Tensor> others,
        IReadOnlyDictionary<string, object>? global = null, IReadOnlyList<IReadOnlyDictionary<string, object>>? perModel = null, long seed = 42, string name = "layers.0.weight",
        OutputBuffers? buffers = null, ScratchBuffers? scratch = null, Action<string>? note = null)
    {
        var tensors = new List<torch.Tensor>();
        var pm = new List<ResolvedParameters>();
        var ids = new List<string>();
        if (baseTensor is not null) { tensors.Add(baseTensor); pm.Add(Params(method, true, null)); ids.Add("base"); }
        for (int i = 0; i < others.Count; i++)
        {
            tensors.Add(others[i]);
            pm.Add(Params(method, true, perModel?[i] ?? new Dictionary<string, object> { ["weight"] = 1.0 }));
            ids.Add($"m{i}");
        }
        return new TensorMergeInput
        {
            TensorName = name, Tensors = tensors, ModelIds = ids, PerModel = pm, Global = Params(method, false, global),
            Base = baseTensor, BaseIndex = baseTensor is null ? -1 : 0, Seed = seed, OutputBuffers = buffers, Scratch = scratch, Note = note,
        };
    }

    /// <summary>A task-arithmetic family method by its recipe name, on the fused float32 path or forced onto the tensor path.</summary>
    public static TaskArithmeticFamily TaskVectorMethod(string name, bool fused, long? maskBudget = null) => Build(name, fused, maskBudget ?? TaskArithmeticFamily.DefaultMaskBudgetBytes);

    private static TaskArithmeticFamily Build(string name, bool fused, long maskBudget) => name switch
    {
        "task_arithmetic" => new CloudSoup.Engine.Merging.Methods.TaskArithmetic { Fused = fused },
        "ties" => new CloudSoup.Engine.Merging.Methods.Ties { Fused = fused },
        "breadcrumbs" => new CloudSoup.Engine.Merging.Methods.Breadcrumbs { Fused = fused },
        "breadcrumbs_ties" => new CloudSoup.Engine.Merging.Methods.BreadcrumbsTies { Fused = fused },
        "dare_ties" => new CloudSoup.Engine.Merging.Methods.DareTies { Fused = fused, MaskBudgetBytes = maskBudget },
        "dare_linear" => new CloudSoup.Engine.Merging.Methods.DareLinear { Fused = fused, MaskBudgetBytes = maskBudget },
        "della" => new CloudSoup.Engine.Merging.Methods.Della { Fused = fused, MaskBudgetBytes = maskBudget },
        "della_linear" => new CloudSoup.Engine.Merging.Methods.DellaLinear { Fused = fused, MaskBudgetBytes = maskBudget },
        _ => throw new ArgumentException($"not a task-arithmetic method: {name}", nameof(name)),
    };

    public static Dictionary<string, object> D(params (string, object)[] kv) => kv.ToDictionary(p => p.Item1, p => p.Item2);

    public static void Close(double[] expected, torch.Tensor actual, double tol = 1e-6)
    {
        var a = actual.to_type(torch.ScalarType.Float64).flatten().data<double>().ToArray();
        Assert.Equal(expected.Length, a.Length);
        for (int i = 0; i < a.Length; i++)
            Assert.True(Math.Abs(expected[i] - a[i]) <= tol, $"element {i}: expected {expected[i]}, got {a[i]} (all: [{string.Join(", ", a)}])");
    }

    /// <summary>Injected keep-masks, one per model index (base = 0 in these inputs).</summary>
    public sealed class FixedMasks(Dictionary<int, double[]> keep) : IMaskProvider
    {
        public torch.Tensor KeepMask(torch.Tensor keepProbability, TensorMergeInput input, int modelIndex) =>
            torch.tensor(keep[modelIndex], dtype: keepProbability.dtype).reshape(keepProbability.shape);
    }
}
