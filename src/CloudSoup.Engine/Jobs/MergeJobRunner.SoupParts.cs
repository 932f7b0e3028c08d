// A split soup (docs/fanout.md, "Soups"): every soup search starts by evaluating each ingredient alone on the held-out
// data, evaluations that do not depend on each other. Those run as the job's parts, each over a run of ingredients,
// with a part's guarantees (its own message, claim, retries, the completion mask); each hands its scores over in its
// outcome (part-NNN.json), with the evaluation section's rows of the same ingredients (also independent). The part that completes the job then runs the job as one worker would, its search starting
// from the stored scores: the rest of the search (greedy's additions, pruned's removals, learned's fitting; each step
// depends on the one before), the merge, the merge's evaluation, the report and the commit. The result is one worker's,
// whatever the number of parts and the order they finish in: the scores are the same numbers (the same candidate
// buffer and evaluation, doubles round-tripped exactly through JSON), and the search after them is the same code.
using System.Diagnostics;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs.Steps;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Soups;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.Jobs;

public sealed partial class MergeJobRunner
{
    /// <summary>
    /// A soup's part: evaluates its ingredients alone on the held-out data for the search, and as the evaluation section
    /// evaluates them (as read, held-out and test); writes nothing.
    /// </summary>
    private async Task<PartOutcome> RunSoupPartAsync(JobContext job, JobPart part)
    {
        if (!Soups.Soups.TryGet(job.Signature, out var soup))
            throw new InvalidOperationException($"part {part.Index} evaluates ingredients, but {job.Signature.Name} is not a soup");
        if (evaluator is null) throw CloudSoupException.Recipe("evaluation", "evaluation is not available in this build");
        var watch = Stopwatch.StartNew();
        var scores = await SoupSearch.EvaluateIngredientsAsync(job.PlanRecipe, soup, job.Inputs, part.FirstIngredient, part.IngredientCount, job.Store, job.Models,
            job.Progress, job.Ct).ConfigureAwait(false);
        job.PhaseSeconds[JobPhase.Soup] = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var rows = await evaluator.EvaluateIngredientsAsync(job.PlanRecipe, job.Store, job.Models, job.Inputs, part.FirstIngredient, part.IngredientCount,
            job.Progress, job.Ct).ConfigureAwait(false);
        job.PhaseSeconds[JobPhase.Evaluating] = watch.Elapsed.TotalSeconds;
        return new PartOutcome
        {
            Part = part.Index, Files = [], Evaluated = scores, IngredientEvaluations = rows,
            BytesRead = job.Inputs.Skip(part.FirstIngredient).Take(part.IngredientCount).Sum(c => c.TotalBytes),
            Work = JobPartRecord.Describe(part.FirstShard, part.ShardCount, part.FirstIngredient, part.IngredientCount),
            PhaseSeconds = new Dictionary<string, double>(job.PhaseSeconds),
        };
    }

    /// <summary>
    /// Finishes a split soup once every part stored its ingredients' scores and evaluations: runs the whole job (search
    /// from those scores, merge, the merge's evaluation, report, commit) into <paramref name="sink"/>, as one worker would.
    /// </summary>
    private async Task<MergeReport> FinishSoupPartsAsync(Recipe recipe, IOutputSink sink, IReadOnlyList<PartOutcome> parts, string? note,
        IProgress<JobProgress>? progress, CancellationToken ct, string? jobId)
    {
        if (evaluator is null) throw CloudSoupException.Recipe("evaluation", "evaluation is not available in this build");
        await using var job = NewContext(recipe, sink, progress, jobId, ct);
        var ordered = parts.OrderBy(p => p.Part).ToList();
        job.Parallelism = new ParallelismReport(ordered.Count, note,
            ordered.Select(p => new PartReport(p.Part, p.Worker, p.Files, p.BytesRead, p.BytesWritten, p.Seconds, p.Attempts, p.PhaseSeconds, p.Work)).ToList());
        // The parts evaluated side by side: that much of the search and the evaluation took as long as the slowest of them.
        foreach (var phase in new[] { JobPhase.Soup, JobPhase.Evaluating })
            job.PhaseSeconds[phase] = ordered.Max(p => p.PhaseSeconds.GetValueOrDefault(phase));
        // The steps as a whole job runs them; the search step finds the parts' scores, checked against the opened inputs.
        await RunStepsAsync(job, [.. Steps.TakeWhile(s => s is not SoupSearchStep)], sink).ConfigureAwait(false);
        try
        {
            (job.SoupSingles, job.IngredientEvaluations) = HandedOver(ordered, job.Inputs);
        }
        catch
        {
            await sink.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        await RunStepsAsync(job, [.. Steps.SkipWhile(s => s is not SoupSearchStep)], sink).ConfigureAwait(false);
        job.ReportProgress(JobPhase.Done, 1);
        return job.Report!;
    }

    /// <summary>
    /// Every ingredient's score and evaluation-section row, in recipe order, from the parts' outcomes: each ingredient
    /// scored exactly once, by the model the job now reads at its place; anything else fails the finishing in one line.
    /// </summary>
    private static (List<Evaluation.Metrics> Scores, List<Evaluation.ModelEvaluation> Rows) HandedOver(IReadOnlyList<PartOutcome> parts, IReadOnlyList<Formats.Checkpoint> inputs)
    {
        var scores = new Evaluation.Metrics?[inputs.Count];
        var rows = new Evaluation.ModelEvaluation?[inputs.Count];
        foreach (var part in parts)
        {
            if (part.Files.Count > 0 || part.Evaluated.Count == 0 || part.IngredientEvaluations.Count != part.Evaluated.Count)
                throw new InvalidOperationException($"part {part.Part} of a split soup {(part.Files.Count > 0 ? "wrote shards" : "did not evaluate its ingredients both ways")}");
            for (int j = 0; j < part.Evaluated.Count; j++)
            {
                var s = part.Evaluated[j];
                var row = part.IngredientEvaluations[j];
                if (s.Index < 0 || s.Index >= inputs.Count || s.Model != inputs[s.Index].Reference || row.Model != s.Model)
                    throw new CloudSoupException(ErrorKind.IncompatibleModels,
                        $"part {part.Part + 1} scored an ingredient the job no longer has at place {s.Index + 1} (did the recipe or an input change while the job ran?)");
                if (scores[s.Index] != null)
                    throw new InvalidOperationException($"ingredient {s.Index + 1} was scored by two parts");
                scores[s.Index] = s.ToMetrics();
                rows[s.Index] = row;
            }
        }
        if (Array.FindIndex(scores, m => m is null) is var missing and >= 0)
            throw new InvalidOperationException($"no part scored ingredient {missing + 1} of {inputs.Count}");
        return (scores.Select(m => m!).ToList(), rows.Select(r => r!).ToList());
    }
}
