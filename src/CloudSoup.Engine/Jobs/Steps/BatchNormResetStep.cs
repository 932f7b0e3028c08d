using System.Diagnostics;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Reports;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>
/// When the model has BatchNorm running statistics: with evaluation.reset_bn (the default) they are re-estimated from
/// the merged weights on the held-out data, so the written model and its evaluation use them (the merge defers those
/// tensors to the end of the output); without an evaluation section the report warns that they were averaged.
/// </summary>
public sealed class BatchNormResetStep : IJobStep
{
    public string Phase => JobPhase.ResetBn;

    public bool AppliesTo(JobContext job) => BatchNormStatistics(job).Count > 0;

    public Task RunAsync(JobContext job)
    {
        if (job.Recipe.ResetsBatchNorm)
            job.Deferred = new DeferredOutputs(BatchNormStatistics(job), (merged, ct) => ReestimateAsync(job, merged, ct));
        else if (job.Recipe.Evaluation is null)
            job.Warnings.Add("the model has BatchNorm running statistics, which were averaged like weights; add an evaluation section (reset_bn is on by default) to re-estimate them on data");
        return Task.CompletedTask;
    }

    private static HashSet<string> BatchNormStatistics(JobContext job) =>
        job.Plan.Tensors.Where(t => t.Merge && MergePlanner.IsBatchNormStatistic(t.Name)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);

    private static async Task<IReadOnlyDictionary<string, TorchSharp.torch.Tensor>?> ReestimateAsync(JobContext job, IDictionary<string, TorchSharp.torch.Tensor> merged, CancellationToken ct)
    {
        var section = job.PlanRecipe.Evaluation!;
        job.ReportProgress(JobPhase.ResetBn, 0, "re-estimating BatchNorm statistics");
        var watch = Stopwatch.StartNew();
        using var model = await job.Models.LoadAsync(job.Store, section.Model, section.Limits, "evaluation", ct).ConfigureAwait(false);
        using var data = await EvalData.LoadAsync(job.Store, section.Data, ct).ConfigureAwait(false);
        model.LoadWeights(merged.ToDictionary(kv => kv.Key, kv => kv.Value), "the merged model");
        var fresh = model.ResetBatchNorm(data, section.ResetBnExamples, section.BatchSize);
        if (fresh is null) return null;
        job.BatchNormReset = new BatchNormResetReport(model.BatchNormResetMethod, fresh.Keys.Order(StringComparer.Ordinal).ToList(),
            (int)Math.Min(section.ResetBnExamples, data.Count), watch.Elapsed.TotalSeconds);
        return fresh;
    }
}
