// Model soups (Wortsman et al. 2022, arXiv 2203.05482; mlfoundations/model-soups main.py) and the pruned soup
// (Dansereau et al. 2023, arXiv 2301.10092). A soup is a job-level strategy, not a per-tensor function: it
// picks mixing coefficients by evaluating candidate soups on held-out data (SoupSearch), then the ordinary
// weighted-average merge writes the result. These entries exist so recipes can name the soups and their
// parameters; MergeJobRunner swaps in SoupWeights before any tensor is merged.
using CloudSoup.Core.Merging;
using CloudSoup.Core.Recipes;
using TorchSharp;

namespace CloudSoup.Core.Soups;

public enum SoupKind { Uniform, Greedy, Pruned, Learned }

public sealed class SoupMethod : IMergeMethod
{
    private SoupMethod(string name, SoupKind kind, string description, IReadOnlyList<ParameterSpec> parameters)
    {
        Name = name;
        Kind = kind;
        Description = description;
        Parameters = parameters;
    }

    public string Name { get; }
    public SoupKind Kind { get; }
    public string Description { get; }
    public BaseModelUse BaseModel => BaseModelUse.NotUsed;
    public int MinModels => 1;
    public IReadOnlyList<ParameterSpec> Parameters { get; }

    public static readonly IReadOnlyList<SoupMethod> All =
    [
        new("uniform_soup", SoupKind.Uniform, "Plain average of every ingredient (uniform soup).", []),
        new("greedy_soup", SoupKind.Greedy, "Add ingredients best-first while held-out accuracy does not drop (greedy soup, Algorithm 1).", []),
        new("pruned_soup", SoupKind.Pruned, "Start from the uniform soup and remove ingredients worst-first while held-out accuracy does not drop.",
        [
            new("passes", ParameterKind.Number, PerModel: false, Default: 1.0, Min: 1, Max: 100, Help: "how many removal passes over the ingredients"),
        ]),
        new("learned_soup", SoupKind.Learned, "Mixing coefficients softmax(logits) learned on the held-out split.",
        [
            new("by_layer", ParameterKind.Bool, PerModel: false, Default: false, Help: "one coefficient vector per tensor instead of one per model"),
            new("steps", ParameterKind.Number, PerModel: false, Default: 100.0, Min: 1, Max: 100_000, Help: "optimisation steps (gradient steps, or coefficient trials for TorchScript models)"),
            new("lr", ParameterKind.Number, PerModel: false, Default: 0.05, Min: 0, MinExclusive: true, Max: 100, Help: "Adam learning rate on the logits (initial step size for TorchScript models)"),
        ]),
    ];

    /// <summary>A global parameter's value (soup parameters are plain scalars), or its default.</summary>
    public double Number(Recipe recipe, string name) =>
        recipe.Parameters.TryGetValue(name, out var s) && s.Evaluate("", LayerPosition.None) is { Number: double d } ? d : Convert.ToDouble(Parameters.First(p => p.Name == name).Default);

    public bool Bool(Recipe recipe, string name) =>
        recipe.Parameters.TryGetValue(name, out var s) && s.Evaluate("", LayerPosition.None) is { Bool: bool b } ? b : (bool)Parameters.First(p => p.Name == name).Default!;

    public torch.Tensor Merge(TensorMergeInput input) =>
        throw new InvalidOperationException($"{Name} is a job-level soup: MergeJobRunner runs SoupSearch and merges with SoupWeights");
}

/// <summary>The weighted average a soup search decided on: one coefficient per model, optionally per tensor.</summary>
internal sealed class SoupWeights(string name, IReadOnlyDictionary<string, double> perModel, IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? perTensor) : IMergeMethod
{
    public string Name => name;
    public string Description => "weighted average with coefficients chosen by a soup search";
    public BaseModelUse BaseModel => BaseModelUse.NotUsed;
    public int MinModels => 1;
    public IReadOnlyList<ParameterSpec> Parameters => [];

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var table = perTensor != null && perTensor.TryGetValue(input.TensorName, out var t) ? t : perModel;
        var weights = input.ModelIds.Select(id => table.GetValueOrDefault(id)).ToArray();
        return Merging.Methods.Linear.WeightedSum(input.TensorName, input.Tensors, weights, normalize: true);
    }
}
