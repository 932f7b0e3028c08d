extern alias CloudSoupFunctions;

using CloudSoup.Control.Intake;
using CloudSoup.Tests.Service;
using CloudSoupFunctions::CloudSoup.Functions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Functions;

/// <summary>The ReconcileJobs timer, invoked as the host invokes it on its schedule, against Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public class ReconcileTimerTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task The_timer_sends_a_job_whose_message_was_lost_a_new_one()
    {
        using var app = await FunctionsTestHost.CreateAsync(azurite, o => o.RequeueAfter = TimeSpan.FromSeconds(4));
        var ckpt = app.Storage.Container(app.Configured.CheckpointsContainer);
        await ckpt.UploadModelAsync("timer/a.safetensors", TestBlobs.RandomModel(91));
        await ckpt.UploadModelAsync("timer/b.safetensors", TestBlobs.RandomModel(92));
        var submitted = await new MergeSubmitter(app.Storage, app.Jobs, NullLogger<MergeSubmitter>.Instance).SubmitAsync(
            $"merge_method: linear\nmodels: [{{model: {app.Configured.CheckpointsContainer}/timer/a.safetensors}}, {{model: {app.Configured.CheckpointsContainer}/timer/b.safetensors}}]\n", "test", None);
        var lost = (await app.Storage.JobsQueue.ReceiveMessageAsync()).Value;
        await app.Storage.JobsQueue.DeleteMessageAsync(lost.MessageId, lost.PopReceipt);
        var timer = ActivatorUtilities.CreateInstance<ReconcileTimer>(app.Services);

        await timer.Run(new TimerInfo(), None);                                        // too early: the job may still have a live message
        Assert.Equal(0, (await app.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
        var job = await TestBlobs.EventuallyAsync(async () =>
        {
            await timer.Run(new TimerInfo(), None);
            return await app.Jobs.GetAsync(submitted.Job.Id, None) is { Requeues: 1 } j ? j : null;
        }, "the timer to send the job again");

        Assert.Equal(JobStatus.Queued, job.Status);
        var message = JobMessage.TryParse((await app.Storage.JobsQueue.PeekMessageAsync()).Value.Body.ToString(), out _);
        Assert.Equal(job.Id, message!.JobId);
        Assert.Equal(1, (await app.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
    }
}
