using CloudSoup.Engine.Evaluation;

namespace CloudSoup.Engine.Soups;

/// <summary>
/// One ingredient evaluated alone on the held-out data, the independent first step of every soup search
/// (SoupSearch): a soup's part of a split job computes these for its run of ingredients (docs/fanout.md) and the part
/// that completes the job searches with them instead of evaluating the ingredients again.
/// </summary>
/// <param name="Index">The ingredient's place in the recipe's order, from 0.</param>
/// <param name="Model">Its reference, checked against the job's inputs when the scores are used.</param>
public sealed record IngredientScore(int Index, string Model, double Accuracy, double Loss, int Examples)
{
    public Metrics ToMetrics() => new(Accuracy, Loss, Examples);
}
