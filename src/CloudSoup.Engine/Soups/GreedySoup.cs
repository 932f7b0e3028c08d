// The greedy soup (Wortsman et al. 2022, arXiv 2203.05482, Algorithm 1): ingredients sorted by held-out
// accuracy, best first; the next one joins if the soup's held-out accuracy does not drop. The authors' main.py
// uses a strict >; with small held-out sets ties are common, and >= follows the paper's text.
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Soups;

public sealed class GreedySoup : ISoup
{
    public MethodSignature Signature => SoupMethods.Greedy;

    public SoupChoice Choose(SoupSearch search, SoupContext context)
    {
        var order = context.BestFirst;
        int k = order.Count;
        var chosen = new List<int> { order[0] };
        var best = context.Single[order[0]];
        context.Steps.Add(new SoupStep(0, "start", search.Models[order[0]], best.Accuracy, best.Loss, true, 1));
        for (int s = 1; s < k; s++)
        {
            context.Ct.ThrowIfCancellationRequested();
            context.Progress?.Report(new JobProgress(JobPhase.Soup, 0.5 + 0.5 * s / k, $"greedy: trying {search.Models[order[s]]}"));
            var m = search.Evaluate(search.Uniform(chosen.Append(order[s])));
            bool accept = m.Accuracy >= best.Accuracy;
            if (accept) { chosen.Add(order[s]); best = m; }
            context.Steps.Add(new SoupStep(s, "add", search.Models[order[s]], m.Accuracy, m.Loss, accept, chosen.Count));
        }
        return new(search.Uniform(chosen), "greedy (paper Algorithm 1): ingredients by held-out accuracy, best first; add one if the soup's held-out accuracy does not drop (>=)");
    }
}
