// The pruned soup (Dansereau et al. 2023, arXiv 2301.10092): start from the uniform soup of all ingredients,
// try removing them worst first, keep a removal if held-out accuracy does not drop (>=), for `passes` passes;
// the best ingredient is never removed. (Their "drop models under 10%" pre-filter is not done: the pruning
// removes such models anyway.)
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Methods;

namespace CloudSoup.Engine.Soups;

public sealed class PrunedSoup : ISoup
{
    public MethodSignature Signature => SoupMethods.Pruned;

    public SoupChoice Choose(SoupSearch search, SoupContext context)
    {
        var order = context.BestFirst;
        int k = order.Count;
        var current = order.ToList();
        var baseline = search.Evaluate(search.Uniform(current));
        context.Steps.Add(new SoupStep(0, "start", null, baseline.Accuracy, baseline.Loss, true, current.Count));
        int passes = (int)Signature.Number(context.Recipe, "passes"), step = 0;
        for (int pass = 0; pass < passes; pass++)
            foreach (int i in order.Skip(1).Reverse())   // worst first; the best is never removed
            {
                context.Ct.ThrowIfCancellationRequested();
                if (!current.Contains(i) || current.Count == 1) continue;
                context.Progress?.Report(new JobProgress(JobPhase.Soup, 0.5 + 0.5 * (pass + (double)step / k) / passes, $"pruned: trying without {search.Models[i]}"));
                var m = search.Evaluate(search.Uniform(current.Where(j => j != i)));
                bool accept = m.Accuracy >= baseline.Accuracy;
                if (accept) { current.Remove(i); baseline = m; }
                context.Steps.Add(new SoupStep(++step, "remove", search.Models[i], m.Accuracy, m.Loss, accept, current.Count));
            }
        return new(search.Uniform(current),
            $"pruned (Dansereau et al. 2023): start from the uniform soup, remove ingredients worst first if held-out accuracy does not drop (>=), {passes} pass(es), best never removed");
    }
}
