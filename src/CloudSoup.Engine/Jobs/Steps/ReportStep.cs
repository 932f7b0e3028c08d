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
            Outputs = stats.Files.Concat([JobOutputs.ReportJson, JobOutputs.ReportHtml, JobOutputs.ResolvedRecipe]).Select(job.Sink.Locate)
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
            Warnings = job.Warnings,
            BatchNormReset = job.BatchNormReset,
            MethodNotes = job.WholeModelNote is null ? stats.MethodNotes : new Dictionary<string, string> { ["(whole model)"] = job.WholeModelNote },
            Finished = DateTimeOffset.UtcNow,
            Recipe = RecipeJson.ToJson(job.Recipe),
        };
        await job.Sink.WriteAllAsync(JobOutputs.ResolvedRecipe, Encoding.UTF8.GetBytes(RecipeJson.ToJsonString(job.Recipe)), job.Ct).ConfigureAwait(false);
        await job.Sink.WriteAllAsync(JobOutputs.ReportHtml, Encoding.UTF8.GetBytes(HtmlReport.Render(report)), job.Ct).ConfigureAwait(false);
        await job.Sink.WriteAllAsync(JobOutputs.ReportJson, report.ToJsonBytes(), job.Ct).ConfigureAwait(false);
        job.Report = report;
    }
}
