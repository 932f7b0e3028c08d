using CloudSoup.Control.Storage;
using CloudSoup.Engine.ModelFiles;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>
/// Always, after evaluation and before the report: README.md, the model card (ModelFiles/ModelCard.cs), staged with the
/// weights like every other output. mergekit writes one with every merge (mergekit/card.py).
/// </summary>
public sealed class ModelCardStep : IJobStep
{
    public string Phase => JobPhase.Reporting;

    public bool AppliesTo(JobContext job) => true;

    public async Task RunAsync(JobContext job)
    {
        job.ReportProgress(Phase, 0, "model card");
        var files = job.ModelFiles ??= new ModelFilesReport();
        // The verdict line of report.html, from what the report will hold.
        string? verdict = job.Evaluation is null ? null : ReportVerdict.For(new MergeReport
        {
            Method = job.Signature.Name, Inputs = [], Outputs = [], PhaseSeconds = new Dictionary<string, double>(), Evaluation = job.Evaluation, Soup = job.Soup,
        });
        var card = ModelCard.Render(new ModelCard.Input(job.Recipe, job.Signature, job.JobId, files.Written.Contains(ModelFolderFiles.Config), job.Evaluation, job.Soup, verdict));
        await job.Sink.WriteAllAsync(ModelFolderFiles.ModelCard, System.Text.Encoding.UTF8.GetBytes(card), job.Ct).ConfigureAwait(false);
        files.Written.Add(ModelFolderFiles.ModelCard);
    }
}
