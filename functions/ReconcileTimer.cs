// The job reconciler on a timer (Control/Jobs/JobReconciler.cs): re-sends jobs whose queue message was lost and
// deletes attempt folders no job record names. It runs here because in Azure the worker scales to zero when the
// queue is empty, exactly when a lost message needs noticing; the Functions host runs a timer on one instance at
// a time (a blob lease in AzureWebJobsStorage), and a pass is idempotent anyway.
using CloudSoup.Control.Jobs;
using Microsoft.Azure.Functions.Worker;

namespace CloudSoup.Functions;

public sealed class ReconcileTimer(JobReconciler reconciler)
{
    [Function("ReconcileJobs")]
    public Task Run([TimerTrigger("0 */5 * * * *")] TimerInfo timer, CancellationToken ct) => reconciler.RunOnceAsync(ct);
}
