// The one job runner: plan → merge → evaluate → report → commit. `cloudsoup merge` and the queue worker
// both call it; they differ only in the checkpoint store and output sink they pass in.
using System.Diagnostics;
using System.Text;
using CloudSoup.Core.Errors;
using CloudSoup.Core.Evaluation;
using CloudSoup.Core.Formats;
using CloudSoup.Core.Merging;
using CloudSoup.Core.Merging.Methods;
using CloudSoup.Core.Recipes;
using CloudSoup.Core.Reports;
using CloudSoup.Core.Soups;
using CloudSoup.Core.Storage;
using TorchSharp;

namespace CloudSoup.Core.Jobs;

public sealed class MergeJobRunner(ICheckpointStore store, IJobEvaluator? evaluator = null, string? device = null)
{
    public const string ReportJson = "report.json";
    public const string ReportHtml = "report.html";
    public const string ResolvedRecipe = "recipe.resolved.json";

    /// <summary>
    /// Runs the whole job into <paramref name="sink"/> and commits it. On any failure the sink is aborted,
    /// so no partial output ever becomes visible.
    /// </summary>
    public async Task<MergeReport> RunAsync(Recipe recipe, IOutputSink sink, IProgress<JobProgress>? progress, CancellationToken ct, string? jobId = null)
    {
        var phases = new Dictionary<string, double>();
        var sw = Stopwatch.StartNew();
        void EndPhase(string name) { phases[name] = phases.GetValueOrDefault(name) + sw.Elapsed.TotalSeconds; sw.Restart(); }
        if (recipe.Evaluation != null && evaluator is null)
            throw CloudSoupException.Recipe("evaluation", "evaluation is not available in this build");

        var checkpoints = new List<Checkpoint>();
        var auxiliary = new Dictionary<string, Checkpoint>();
        var kept = recipe.Evaluation != null ? new Dictionary<string, torch.Tensor>() : null;
        AlignmentOutcome? alignment = null;
        try
        {
            progress?.Report(new JobProgress("planning", 0, "reading checkpoint headers"));
            if (!MergeMethods.TryGet(recipe.MergeMethod, out var method))
                throw CloudSoupException.Recipe("merge_method", $"unknown merge method '{recipe.MergeMethod}'");
            var refs = MergePlanner.MethodInputs(recipe, method);
            var opened = await Task.WhenAll(refs.Select(r => OpenOrNull(r, ct))).ConfigureAwait(false);
            checkpoints.AddRange(opened.Where(c => c != null)!);
            var failure = opened.Select((c, i) => (c, i)).FirstOrDefault(x => x.c is null);
            if (checkpoints.Count != refs.Count)
                await OpenAsync(refs[failure.i], ct).ConfigureAwait(false); // rethrows that model's error
            // mergekit slices: plan over virtual models stacked from the sliced layers (no bytes copied).
            IReadOnlyList<Checkpoint> inputs = checkpoints;
            var planRecipe = recipe;
            if (recipe.Slices != null) (inputs, planRecipe) = SliceLayout.Compose(recipe, method, checkpoints);
            EndPhase("planning");
            List<ComputedFisher>? fishers = null;
            if (recipe.Fisher != null)
            {
                (planRecipe, var computedAux, fishers) = await FisherStep.RunAsync(planRecipe, method, store, inputs, sink, progress, ct).ConfigureAwait(false);
                foreach (var (r, c) in computedAux) auxiliary[r] = c;
                EndPhase("fisher");
            }
            foreach (var r in MergePlanner.AuxiliaryReferences(planRecipe, method))
                if (!auxiliary.ContainsKey(r)) auxiliary[r] = await OpenAsync(r, ct).ConfigureAwait(false);
            var plan = MergePlanner.Plan(planRecipe, inputs, auxiliary);
            EndPhase("planning");

            if (recipe.Alignment is { } alignSection)
            {
                alignment = await AlignmentStep.RunAsync(alignSection, planRecipe, store, inputs, progress, ct).ConfigureAwait(false);
                plan = plan.WithInputOverrides(alignment.Aligned);
                EndPhase("aligning");
            }

            ScopeReport? scopeReport = null;
            if (recipe.ScopeAlignment is { } scopeSection)
            {
                (plan, scopeReport) = await ScopeAlignmentStep.RunAsync(plan, scopeSection, progress, ct).ConfigureAwait(false);
                EndPhase("scope_alignment");
            }

            // Soups decide their coefficients on held-out data first, then merge like any weighted average.
            SoupReport? soupReport = null;
            if (method is SoupMethod soup)
            {
                (soupReport, var weights) = await SoupSearch.RunAsync(planRecipe, soup, inputs, store, progress, ct, alignment?.Aligned, plan.InputTransform).ConfigureAwait(false);
                plan = plan.WithMethod(weights);
                EndPhase("soup_search");
            }

            // Whole-model agreement decides once from a pre-pass over every tensor, then merges like per-tensor.
            string? wholeModelNote = null;
            if (plan.Method is Agreement agreement && agreement.NeedsPrepass(plan))
            {
                (plan, wholeModelNote) = await AgreementPrepass.RunAsync(plan, progress, ct).ConfigureAwait(false);
                EndPhase("agreement");
            }

            // TIES with topk_scope: model finds each model's magnitude threshold over the whole model first.
            if (plan.Method is Ties ties && ties.NeedsPrepass(plan))
            {
                (plan, wholeModelNote) = await TopKPrepass.RunAsync(plan, t => new Ties { ModelThresholds = t }, progress, ct).ConfigureAwait(false);
                EndPhase("topk");
            }

            // BatchNorm statistics are re-estimated from the merged weights on the held-out data (reset_bn), so the
            // written model and its evaluation use them; without evaluation data a BN model gets a warning.
            BatchNormResetReport? bnReset = null;
            var warnings = recipe.Warnings.ToList();
            var bnStats = plan.Tensors.Where(t => t.Merge && MergePlanner.IsBatchNormStatistic(t.Name)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            DeferredOutputs? deferred = null;
            if (bnStats.Count > 0 && recipe.ResetsBatchNorm)
                deferred = new DeferredOutputs(bnStats, async (merged, token) =>
                {
                    var section = planRecipe.Evaluation!;
                    progress?.Report(new JobProgress("reset_bn", 0, "re-estimating BatchNorm statistics"));
                    var bnWatch = Stopwatch.StartNew();
                    using var model = await JobEvaluator.LoadModelAsync(store, section.Model, token).ConfigureAwait(false);
                    using var data = await EvalData.LoadAsync(store, section.Data, token).ConfigureAwait(false);
                    model.LoadWeights(merged.ToDictionary(kv => kv.Key, kv => kv.Value), "the merged model");
                    var fresh = model.ResetBatchNorm(data, section.ResetBnExamples, section.BatchSize);
                    if (fresh is null) return null;
                    bnReset = new BatchNormResetReport(model.BatchNormResetMethod, fresh.Keys.Order(StringComparer.Ordinal).ToList(),
                        (int)Math.Min(section.ResetBnExamples, data.Count), bnWatch.Elapsed.TotalSeconds);
                    return fresh;
                });
            else if (bnStats.Count > 0 && recipe.Evaluation is null)
                warnings.Add("the model has BatchNorm running statistics, which were averaged like weights; add an evaluation section (reset_bn is on by default) to re-estimate them on data");

            var computeDevice = ComputeDevice.Resolve(device);
            var stats = await MergeExecutor.ExecuteAsync(plan, sink, progress, kept, ct, computeDevice, deferred).ConfigureAwait(false);
            EndPhase("merging");

            EvaluationReport? evaluation = null;
            if (recipe.Evaluation != null)
            {
                progress?.Report(new JobProgress("evaluating", 0));
                evaluation = await evaluator!.EvaluateAsync(planRecipe, store, inputs, kept!, progress, ct).ConfigureAwait(false);
                EndPhase("evaluating");
            }

            progress?.Report(new JobProgress("reporting", 0));
            var report = new MergeReport
            {
                JobId = jobId,
                Name = recipe.Name,
                Method = method.Name,
                BaseModel = recipe.BaseModel,
                Inputs = checkpoints.Select(c => new InputModel(c.Reference, c.Files.Select(f => new InputFile(f.File, f.Version)).ToList(), c.TotalBytes)).ToList(),
                Outputs = stats.Files.Concat([ReportJson, ReportHtml, ResolvedRecipe]).Select(sink.Locate).Concat(fishers?.Select(f => f.Output) ?? []).ToList(),
                TensorsMerged = stats.TensorsMerged,
                TensorsCopied = stats.TensorsCopied,
                BytesRead = stats.BytesRead,
                BytesWritten = stats.BytesWritten,
                PhaseSeconds = phases,
                Device = ComputeDevice.Resolve(device).ToString(),
                Evaluation = evaluation,
                Soup = soupReport,
                Alignment = alignment?.Report,
                Fishers = fishers,
                ScopeAlignment = scopeReport,
                Warnings = warnings,
                BatchNormReset = bnReset,
                MethodNotes = wholeModelNote is null ? stats.MethodNotes : new Dictionary<string, string> { ["(whole model)"] = wholeModelNote },
                Finished = DateTimeOffset.UtcNow,
            };
            await sink.WriteAllAsync(ResolvedRecipe, Encoding.UTF8.GetBytes(RecipeJson.ToJsonString(recipe)), ct).ConfigureAwait(false);
            await sink.WriteAllAsync(ReportHtml, Encoding.UTF8.GetBytes(HtmlReport.Render(report)), ct).ConfigureAwait(false);
            await sink.WriteAllAsync(ReportJson, report.ToJsonBytes(), ct).ConfigureAwait(false);
            progress?.Report(new JobProgress("committing", 0));
            await sink.CommitAsync(ct).ConfigureAwait(false);
            progress?.Report(new JobProgress("done", 1));
            return report;
        }
        catch
        {
            await sink.AbortAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        finally
        {
            foreach (var c in checkpoints) await c.DisposeAsync().ConfigureAwait(false);
            foreach (var c in auxiliary.Values) await c.DisposeAsync().ConfigureAwait(false);
            if (kept != null) foreach (var t in kept.Values) t.Dispose();
            alignment?.Dispose();
        }
    }

    private async Task<Checkpoint?> OpenOrNull(string reference, CancellationToken ct)
    {
        try { return await OpenAsync(reference, ct).ConfigureAwait(false); }
        catch (CloudSoupException) { return null; }
    }

    private Task<Checkpoint> OpenAsync(string reference, CancellationToken ct) => Checkpoint.OpenAsync(store, reference, ct);
}
