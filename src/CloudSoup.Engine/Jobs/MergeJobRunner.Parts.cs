// A split job's three entry points (docs/fanout.md), over the same steps as a whole job (MergeJobRunner.cs): the
// worker that claims the job plans its parts and runs the first stage once; each part merges its run of shards; the
// part that completes the job writes the index, side files, model card and report over every part's outcome.
using System.Diagnostics;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs.Steps;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Soups;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Engine.Jobs;

public sealed partial class MergeJobRunner
{
    /// <summary>
    /// Plans <paramref name="recipe"/> (headers only: nothing is merged or written) and decides its parts
    /// (PartPlanner): one unless the recipe's parallelism asks for more and the job can be split. When it is split and
    /// it needs whole-model work before merging (permutation alignment, scope alignment, a whole-model decision), this
    /// runs it once: the first stage.
    /// </summary>
    public async Task<PartLayout> PlanPartsAsync(Recipe recipe, long partBytes, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        await using var sink = new NoOutputSink();
        await using var job = NewContext(recipe, sink, progress, null, ct);
        // The model files step too, for its checks (a tokenizer_source whose vocabulary the models do not share fails
        // here, before any part reads a tensor); what it would write is discarded, the finishing part writes it.
        await RunStepsAsync(job, [.. PlanningSteps, new ModelFilesStep()], sink).ConfigureAwait(false);
        var layout = PartPlanner.Decide(job, partBytes);
        if (!layout.IsSplit) return layout;
        if (Soups.Soups.TryGet(job.Signature, out var soup))
        {
            // A split soup has no first stage: its parts evaluate the ingredients, the finishing part holds them all, so
            // what would fail the whole job's search at once fails here, before any part runs.
            if (evaluator is null) throw CloudSoupException.Recipe("evaluation", "evaluation is not available in this build");
            SoupSearch.CheckMemory(job.PlanRecipe, soup, job.Inputs);
            return layout;
        }
        // The first stage, in the order a whole job runs these steps: permutation alignment, scope alignment (measured
        // on the permuted inputs), then the whole-model decision (taken on the re-scoped inputs). Each later pass reads
        // through the earlier ones' plan, as the parts will.
        var stage = new FirstStage();
        var seconds = new Dictionary<string, double>();
        var watch = Stopwatch.StartNew();
        if (recipe.Alignment != null)
        {
            var permutations = await AlignmentStep.MeasureAsync(job).ConfigureAwait(false);
            job.Plan = AlignmentStep.Apply(job.Plan, permutations);
            stage = stage with { Alignment = permutations };
            seconds[JobPhase.Aligning] = watch.Elapsed.TotalSeconds;
        }
        if (recipe.ScopeAlignment is { } section)
        {
            watch.Restart();
            var scopes = await ScopeAlignmentStep.MeasureAsync(job.Plan, section, progress, ct).ConfigureAwait(false);
            job.Plan = ScopeAlignmentStep.Apply(job.Plan, section, scopes);
            stage = stage with { Scopes = scopes };
            seconds[JobPhase.ScopeAlignment] = watch.Elapsed.TotalSeconds;
        }
        if (job.Plan.Method is IWholeModelPrepass p && p.NeedsPrepass(job.Plan))
        {
            watch.Restart();
            await RunStepsAsync(job, [new PrepassStep()], sink).ConfigureAwait(false);
            string decision = ((IWholeModelPrepass)job.Plan.Method).SaveDecision() ?? throw new InvalidOperationException($"{job.Signature.Name}'s pre-pass left no decision");
            stage = stage with { Prepass = new PrepassDecision(job.Signature.Name, decision, job.WholeModelNote ?? "") };
            seconds[JobPhase.Prepass] = watch.Elapsed.TotalSeconds;
        }
        return stage.IsEmpty ? layout : layout with { Stage1 = stage with { PhaseSeconds = seconds } };
    }

    /// <summary>
    /// Runs one part of a split job: plans it as the whole job would, merges only the part's shards into
    /// <paramref name="sink"/> and commits them (they stay unnamed until the job record names the attempt). On any
    /// failure the sink is aborted.
    /// </summary>
    /// <param name="stage1">The split job's first stage (PlanPartsAsync), or null; what it lacks the part computes itself.</param>
    public async Task<PartOutcome> RunPartAsync(Recipe recipe, IOutputSink sink, JobPart part, FirstStage? stage1, IProgress<JobProgress>? progress, CancellationToken ct,
        string? jobId = null)
    {
        await using var job = NewContext(recipe, sink, progress, jobId, ct);
        await RunStepsAsync(job, PlanningSteps, sink).ConfigureAwait(false);
        try
        {
            if (part.EvaluatesIngredients) return await RunSoupPartAsync(job, part).ConfigureAwait(false);
            // Without a first stage (a job planned as one part) the part runs these passes itself: the same result, read once more.
            if (recipe.Alignment != null)
            {
                if (stage1?.Alignment is { } permutations) job.Plan = AlignmentStep.Apply(job.Plan, permutations);
                else await RunStepsAsync(job, [new AlignmentStep()], sink).ConfigureAwait(false);
            }
            if (recipe.ScopeAlignment is { } section)
            {
                if (stage1?.Scopes is { } scopes) job.Plan = ScopeAlignmentStep.Apply(job.Plan, section, scopes);
                else await RunStepsAsync(job, [new ScopeAlignmentStep()], sink).ConfigureAwait(false);
            }
            if (job.Plan.Method is IWholeModelPrepass p && p.NeedsPrepass(job.Plan))
            {
                if (stage1?.Prepass is not { } prepass) await RunStepsAsync(job, [new PrepassStep()], sink).ConfigureAwait(false);
                else if (prepass.Method != job.Signature.Name)
                    throw new InvalidOperationException($"part {part.Index} of a {job.Signature.Name} job was handed a first stage made by {prepass.Method}");
                else job.Plan = job.Plan.WithMethod(p.WithDecision(prepass.Decision));
            }
            if (part.FirstShard + part.ShardCount > job.Plan.Shards.Count)
                throw new CloudSoupException(ErrorKind.IncompatibleModels,
                    $"part {part.Index} writes shards {part.FirstShard + 1}-{part.FirstShard + part.ShardCount}, but the inputs now plan {job.Plan.Shards.Count} (did an input change while the job ran?)");
            var watch = Stopwatch.StartNew();
            var stats = await MergeExecutor.ExecuteAsync(job.Plan.ForShards(part.FirstShard, part.ShardCount), sink, progress, null, ct, job.Device).ConfigureAwait(false);
            job.PhaseSeconds[JobPhase.Merging] = watch.Elapsed.TotalSeconds;
            watch.Restart();
            job.ReportProgress(JobPhase.Committing, 0);
            await sink.CommitAsync(ct).ConfigureAwait(false);
            job.PhaseSeconds[JobPhase.Committing] = watch.Elapsed.TotalSeconds;
            return new PartOutcome
            {
                Part = part.Index, Files = stats.Files, BytesRead = stats.BytesRead, BytesWritten = stats.BytesWritten,
                TensorsMerged = stats.TensorsMerged, TensorsCopied = stats.TensorsCopied, MethodNotes = stats.MethodNotes, NonFinite = stats.NonFinite,
                Work = JobPartRecord.Describe(part.FirstShard, part.ShardCount, 0, 0),
                PhaseSeconds = new Dictionary<string, double>(job.PhaseSeconds),
            };
        }
        catch (Exception e)
        {
            await sink.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            if (TensorLibraryErrors.IsInputError(e)) throw TensorLibraryErrors.AsInputError(e);
            throw;
        }
    }

    /// <summary>
    /// Finishes a split job once every part committed its shards: writes the model's side files (config, tokenizer), the
    /// shard index over all the parts' shards, the model card, the report (with every part's outcome, in part order) and
    /// the resolved recipe into <paramref name="sink"/>, and commits.
    /// </summary>
    public async Task<MergeReport> FinishPartsAsync(Recipe recipe, IOutputSink sink, IReadOnlyList<PartOutcome> parts, string? note, FirstStage? stage1,
        IProgress<JobProgress>? progress, CancellationToken ct, string? jobId = null)
    {
        // A split soup's parts scored its ingredients; the finishing runs the rest of the job (MergeJobRunner.SoupParts.cs).
        if (parts.Any(p => p.Evaluated.Count > 0)) return await FinishSoupPartsAsync(recipe, sink, parts, note, progress, ct, jobId).ConfigureAwait(false);
        await using var job = NewContext(recipe, sink, progress, jobId, ct);
        await RunStepsAsync(job, [.. PlanningSteps, new ModelFilesStep()], sink).ConfigureAwait(false);
        if (stage1 != null)
        {
            // The report's alignment section as the first stage measured it; the parts permuted the tensors as they read them.
            if (stage1.Alignment is { } permutations) job.Alignment = new AlignmentOutcome([], permutations);
            job.ScopeAlignment = stage1.Scopes?.Report;
            job.WholeModelNote = stage1.Prepass?.Note;
            foreach (var (phase, seconds) in stage1.PhaseSeconds) job.PhaseSeconds[phase] = seconds;
        }
        try
        {
            var ordered = parts.OrderBy(p => p.Part).ToList();
            var files = ordered.SelectMany(p => p.Files).ToList();
            var expected = job.Plan.Shards.Select(s => s.FileName).ToList();
            if (!files.SequenceEqual(expected))
                throw new InvalidOperationException($"the parts wrote {files.Count} files, the plan has {expected.Count} shards");
            long written = ordered.Sum(p => p.BytesWritten);
            if (job.Plan.Shards.Count > 1)
            {
                var index = SafetensorsLayout.BuildIndex(job.Plan.Shards);
                await sink.WriteAllAsync(SafetensorsLayout.IndexFileName, index, ct).ConfigureAwait(false);
                files.Add(SafetensorsLayout.IndexFileName);
                written += index.Length;
            }
            var notes = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in ordered) foreach (var (k, v) in p.MethodNotes) notes[k] = v;
            job.Stats = new MergeStats(ordered.Sum(p => p.BytesRead), written, ordered.Sum(p => p.TensorsMerged), ordered.Sum(p => p.TensorsCopied),
                TimeSpan.FromSeconds(ordered.Max(p => p.Seconds)), files) { MethodNotes = notes, NonFinite = ordered.SelectMany(p => p.NonFinite).ToList() };
            // The parts ran side by side: a phase took as long as its slowest part.
            foreach (var phase in ordered.SelectMany(p => p.PhaseSeconds.Keys).Distinct().Order(StringComparer.Ordinal))
                job.PhaseSeconds[phase] = job.PhaseSeconds.GetValueOrDefault(phase) + ordered.Max(p => p.PhaseSeconds.GetValueOrDefault(phase));
            job.Parallelism = new ParallelismReport(ordered.Count, note,
                ordered.Select(p => new PartReport(p.Part, p.Worker, p.Files, p.BytesRead, p.BytesWritten, p.Seconds, p.Attempts, p.PhaseSeconds, p.Work)).ToList());
        }
        catch
        {
            await sink.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        await RunStepsAsync(job, [new ModelCardStep(), new ReportStep(), new CommitStep()], sink).ConfigureAwait(false);
        job.ReportProgress(JobPhase.Done, 1);
        return job.Report!;
    }
}
