// The one job runner: `cloudsoup merge` and the queue worker both call it; they differ only in the checkpoint
// store and output sink they pass in. The job is the sequence of steps below, each in its own file under Steps/
// saying when it applies; the runner only runs them in order, times them, and aborts the output on failure.
// A job split into parts (docs/fanout.md) runs the same steps in three pieces: MergeJobRunner.Parts.cs.
using CloudSoup.Engine.Evaluation;
using System.Diagnostics;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs.Steps;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.Jobs;

/// <param name="models">Loads evaluation models; the strict sandbox with default limits unless given.</param>
public sealed partial class MergeJobRunner(ICheckpointStore store, IJobEvaluator? evaluator = null, string? device = null, EvalModelLoader? models = null)
{
    /// <summary>The job's steps, in order.</summary>
    public static readonly IReadOnlyList<IJobStep> Steps =
    [
        new OpenStep(),           // read every input's header; compose slices
        new FisherStep(),         // compute missing diagonal Fishers (fisher section)
        new PlanStep(),           // open auxiliary checkpoints; plan every tensor
        new ModelFilesStep(),     // config.json, generation_config.json, tokenizer files (checked against tokenizer_source)
        new AlignmentStep(),      // permutation alignment (alignment section)
        new ScopeAlignmentStep(), // weight scope alignment (scope_alignment section)
        new SoupSearchStep(),     // soups: choose the mixing coefficients on held-out data
        new PrepassStep(),        // methods that decide over the whole model first (agreement, ties topk_scope: model)
        new BatchNormResetStep(), // re-estimate BatchNorm statistics from the merged weights (evaluation.reset_bn)
        new MergeStep(),          // merge tensor by tensor into the output sink
        new EvaluateStep(),       // evaluate ingredients and the merge (evaluation section)
        new ModelCardStep(),      // README.md, the model card
        new ReportStep(),         // report.json, report.html, the resolved recipe
        new CommitStep(),         // make every output visible at once
    ];

    /// <summary>
    /// Runs the whole job into <paramref name="sink"/> and commits it. On any failure the sink is aborted,
    /// so no partial output ever becomes visible. <paramref name="parallelismNote"/>: why a recipe that asked for
    /// parts runs as one (PartLayout.Note), for the report.
    /// </summary>
    public async Task<MergeReport> RunAsync(Recipe recipe, IOutputSink sink, IProgress<JobProgress>? progress, CancellationToken ct, string? jobId = null,
        string? parallelismNote = null)
    {
        if (recipe.Evaluation != null && evaluator is null)
            throw CloudSoupException.Recipe("evaluation", "evaluation is not available in this build");
        await using var job = NewContext(recipe, sink, progress, jobId, ct);
        if (recipe.Parallelism != null) job.Parallelism = new ParallelismReport(1, parallelismNote ?? "ran as one part (cloudsoup merge runs a job in one process)", []);
        await RunStepsAsync(job, Steps, sink).ConfigureAwait(false);
        job.ReportProgress(JobPhase.Done, 1);
        return job.Report!;
    }

    /// <summary>The steps that read headers and plan, nothing else (what every part of a split job redoes).</summary>
    private static readonly IReadOnlyList<IJobStep> PlanningSteps = [new OpenStep(), new PlanStep()];

    private JobContext NewContext(Recipe recipe, IOutputSink sink, IProgress<JobProgress>? progress, string? jobId, CancellationToken ct) =>
        new(recipe, store, sink, evaluator, models ?? EvalModelLoader.Default, ComputeDevice.Resolve(device), progress, jobId, ct);

    /// <summary>Runs the applicable <paramref name="steps"/> in order, timing each; on any failure aborts <paramref name="sink"/>.</summary>
    private static async Task RunStepsAsync(JobContext job, IReadOnlyList<IJobStep> steps, IOutputSink sink)
    {
        try
        {
            var watch = new Stopwatch();
            foreach (var step in steps)
            {
                job.Ct.ThrowIfCancellationRequested();
                if (!step.AppliesTo(job)) continue;
                watch.Restart();
                await step.RunAsync(job).ConfigureAwait(false);
                job.PhaseSeconds[step.Phase] = job.PhaseSeconds.GetValueOrDefault(step.Phase) + watch.Elapsed.TotalSeconds;
            }
        }
        catch (Exception e) when (TensorLibraryErrors.IsInputError(e))
        {
            await sink.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw TensorLibraryErrors.AsInputError(e);
        }
        catch
        {
            await sink.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }
}
