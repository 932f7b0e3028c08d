// Declarations of the model soups (Wortsman et al. 2022, arXiv 2203.05482) and the pruned soup (Dansereau et al.
// 2023, arXiv 2301.10092). A soup is a job-level strategy: it picks mixing coefficients by evaluating candidates on
// held-out data (CloudSoup.Engine/Soups), then the ordinary weighted average writes the result.
namespace CloudSoup.Control.Methods;

public static class SoupMethods
{
    private static MethodSignature Soup(string name, string description, params ParameterSpec[] parameters) => new()
    {
        Name = name, Description = description, BaseModel = BaseModelUse.NotUsed, MinModels = 1, NeedsEvaluation = true, Parameters = parameters,
    };

    public static readonly MethodSignature Uniform = Soup("uniform_soup", "Plain average of every ingredient (uniform soup).");

    public static readonly MethodSignature Greedy = Soup("greedy_soup",
        "Add ingredients best-first while held-out accuracy does not drop (greedy soup, Algorithm 1).");

    public static readonly MethodSignature Pruned = Soup("pruned_soup",
        "Start from the uniform soup and remove ingredients worst-first while held-out accuracy does not drop.",
        new ParameterSpec("passes", ParameterKind.Number, PerModel: false, Default: 1.0, Min: 1, Max: 100, Help: "how many removal passes over the ingredients"));

    public static readonly MethodSignature Learned = Soup("learned_soup", "Mixing coefficients softmax(logits) learned on the held-out split.",
        new ParameterSpec("by_layer", ParameterKind.Bool, PerModel: false, Default: false, Help: "one coefficient vector per tensor instead of one per model"),
        new ParameterSpec("steps", ParameterKind.Number, PerModel: false, Default: 100.0, Min: 1, Max: 100_000, Help: "optimisation steps (gradient steps, or coefficient trials for TorchScript models)"),
        new ParameterSpec("lr", ParameterKind.Number, PerModel: false, Default: 0.05, Min: 0, MinExclusive: true, Max: 100, Help: "Adam learning rate on the logits (initial step size for TorchScript models)"));
}
