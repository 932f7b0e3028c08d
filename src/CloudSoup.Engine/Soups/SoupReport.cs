namespace CloudSoup.Engine.Soups;

/// <summary>One ingredient as the soup search saw it: its held-out accuracy and final mixing coefficient.</summary>
public sealed record SoupIngredient(string Model, double HeldOutAccuracy, double HeldOutLoss, double Coefficient, bool Used);

/// <summary>
/// One step of a soup search. Greedy: "add" tries an ingredient; pruned: "remove" tries dropping one;
/// learned: "learn" logs progress. <see cref="Size"/> is the number of ingredients in the soup after the step.
/// </summary>
public sealed record SoupStep(int Step, string Action, string? Model, double HeldOutAccuracy, double HeldOutLoss, bool Accepted, int Size);

/// <summary>report.json "soup": how the soup was chosen.</summary>
public sealed record SoupReport(
    string Method,
    /// <summary>The acceptance rule or optimiser, in words (e.g. "add if held-out accuracy >= best so far").</summary>
    string Rule,
    IReadOnlyList<SoupIngredient> Ingredients,
    IReadOnlyList<SoupStep> Steps,
    double HeldOutAccuracy,
    double HeldOutLoss,
    long BytesRead,
    long MemoryBytes,
    long MemoryBudgetBytes,
    int CandidatesEvaluated,
    /// <summary>learned_soup with by_layer: the coefficients per tensor (model → coefficient).</summary>
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? TensorCoefficients = null);
