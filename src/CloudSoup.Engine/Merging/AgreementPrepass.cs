// Whole-model agreement (agreement with granularity: model): one read pass over every merged tensor sums the
// task vectors' Gram matrix G_ij = Σ_tensors ⟨τ_i, τ_j⟩, the agreement rule decides once on G (the cosines of
// the flattened whole-model task vectors), and the merge then uses those coefficients for every tensor.
// Memory: one tensor per model at a time, as in the merge itself; cost: the inputs are read twice.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Merging.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

public static class AgreementPrepass
{
    /// <summary>Returns the plan with the decision fixed, and a line for the report naming the accepted models.</summary>
    public static async Task<(MergePlan Plan, string Note)> RunAsync(MergePlan plan, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var tasks = plan.Tensors.Where(t => t.Merge).ToList();
        if (tasks.Count == 0) throw CloudSoupException.Recipe("parameters.granularity", "whole-model agreement found no floating-point tensors to merge");
        var sources = tasks[0].Sources;
        if (tasks.Any(t => !t.Sources.SequenceEqual(sources)))
            throw CloudSoupException.Recipe("parameters.granularity",
                "whole-model agreement needs every model to provide every merged tensor; use tensors: intersection or granularity: tensor");
        string mode = tasks[0].Global.Text("mode");
        double threshold = tasks[0].Global.Number("threshold");
        if (tasks.Any(t => t.Global.Text("mode") != mode || t.Global.Number("threshold") != threshold || !PaperMethods.WholeModelAgreement(t.Global)))
            throw CloudSoupException.Recipe("parameters", "whole-model agreement decides once, so mode, threshold and granularity cannot vary by tensor (filters)");
        int baseIdx = sources.ToList().IndexOf(plan.BaseIndex);
        if (baseIdx < 0) throw CloudSoupException.Recipe("base_model", "agreement needs base_model to provide every merged tensor");
        var others = Enumerable.Range(0, sources.Count).Where(i => i != baseIdx).ToList();

        int n = others.Count;
        var gram = new double[n, n];
        int done = 0;
        foreach (var task in tasks)
        {
            ct.ThrowIfCancellationRequested();
            using (var owned = new OwnedTensors())
            {
                var inputs = await plan.ReadInputsAsync(sources, task.Name, owned, ct).ConfigureAwait(false);
                using var scope = torch.NewDisposeScope();   // synchronous from here (see OwnedTensors)
                var b = inputs[baseIdx].to_type(torch.ScalarType.Float64);
                var g = Agreement.Gram(others.Select(i => inputs[i].to_type(torch.ScalarType.Float64) - b).ToList());
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++)
                        gram[i, j] += g[i, j];
            }
            done++;
            progress?.Report(new JobProgress(JobPhase.Prepass, (double)done / tasks.Count, $"{done}/{tasks.Count} tensors"));
        }
        var decision = Agreement.Decide(gram, mode, threshold);
        string note = Agreement.Describe(decision, others.Select(i => plan.Inputs[sources[i]].Reference).ToList()) + $" (whole model, {mode}, threshold {threshold})";
        return (plan.WithMethod(new Agreement(decision)), note);
    }
}
