using System.Text;
using CloudSoup.Engine.Storage;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Reports;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>Always: writes report.json, report.html and the resolved recipe beside the weights (staged with them).</summary>
public sealed class ReportStep : IJobStep
{
    public string Phase => JobPhase.Reporting;

    public bool AppliesTo(JobContext job) => true;

    public async Task RunAsync(JobContext job)
    {
        job.ReportProgress(Phase, 0);
        var stats = job.Stats!;
        // report.html's plots (evaluation and alignment) need a font to carry any text.
        if ((job.Evaluation != null || job.Alignment != null) && ReportStyle.FontWarning() is { } font) job.Warnings.Add(font);
        var report = new MergeReport
        {
            JobId = job.JobId,
            Name = job.Recipe.Name,
            Method = job.Signature.Name,
            BaseModel = job.Recipe.BaseModel,
            Inputs = job.Checkpoints.Select(c => new InputModel(c.Reference, c.Files.Select(f => new InputFile(f.File, f.Version)).ToList(), c.TotalBytes)).ToList(),
            Outputs = stats.Files.Concat(job.ModelFiles?.Written ?? []).Concat([JobOutputs.ReportJson, JobOutputs.ReportHtml, JobOutputs.ResolvedRecipe]).Select(job.Sink.Locate)
                .Concat(job.Fishers?.Select(f => f.Output) ?? []).ToList(),
            TensorsMerged = stats.TensorsMerged,
            TensorsCopied = stats.TensorsCopied,
            BytesRead = stats.BytesRead,
            BytesWritten = stats.BytesWritten,
            PhaseSeconds = new Dictionary<string, double>(job.PhaseSeconds),
            Device = job.Device.ToString(),
            Evaluation = job.Evaluation,
            Soup = job.Soup,
            Alignment = job.Alignment?.Report,
            Fishers = job.Fishers,
            ScopeAlignment = job.ScopeAlignment,
            Warnings = stats.NonFinite.Count > 0 ? [.. job.Warnings, NonFiniteWarning(stats.NonFinite)] : job.Warnings,
            NonFinite = stats.NonFinite,
            ModelFiles = job.ModelFiles,
            BatchNormReset = job.BatchNormReset,
            MethodNotes = job.WholeModelNote is null ? stats.MethodNotes : new Dictionary<string, string> { ["(whole model)"] = job.WholeModelNote },
            Finished = DateTimeOffset.UtcNow,
            Parallelism = job.Parallelism,
            Recipe = RecipeJson.ToJson(job.Recipe),
        };
        await job.Sink.WriteAllAsync(JobOutputs.ResolvedRecipe, Encoding.UTF8.GetBytes(RecipeJson.ToJsonString(job.Recipe)), job.Ct).ConfigureAwait(false);
        await job.Sink.WriteAllAsync(JobOutputs.ReportHtml, Encoding.UTF8.GetBytes(HtmlReport.Render(report)), job.Ct).ConfigureAwait(false);
        await job.Sink.WriteAllAsync(JobOutputs.ReportJson, report.ToJsonBytes(), job.Ct).ConfigureAwait(false);
        job.Report = report;
    }

    /// <summary>One line for the warnings: how many tensors, which models, and whether the merged model carries them.</summary>
    private static string NonFiniteWarning(IReadOnlyList<Merging.NonFiniteTensor> tensors)
    {
        var models = tensors.SelectMany(t => t.Inputs).GroupBy(i => i.Model).Select(g => $"{g.Key} ({g.Sum(i => i.Nan + i.Inf)})").ToList();
        long inOutput = tensors.Sum(t => t.OutputNan + t.OutputInf);
        int outputTensors = tensors.Count(t => t.OutputNan + t.OutputInf > 0);
        var first = tensors.Take(3).Select(t => $"'{t.Tensor}'");
        return $"{tensors.Count} tensor{(tensors.Count == 1 ? "" : "s")} hold NaN or infinite values ({string.Join(", ", first)}{(tensors.Count > 3 ? ", ..." : "")}): " +
               (models.Count > 0 ? $"in the inputs {string.Join(", ", models)}" : "in no input") + "; " +
               (inOutput > 0 ? $"the merged model has {inOutput} in {outputTensors} tensor{(outputTensors == 1 ? "" : "s")}" : "the merged model has none") +
               ". Every tensor is listed under nonFinite; set nonfinite: refuse to fail such jobs instead.";
    }
}
