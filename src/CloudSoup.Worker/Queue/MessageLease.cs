// Keeps a received queue message invisible while its job runs (docs/azure-notes.md §3): Update Message
// every visibility/3 with the newest pop receipt (it changes on every update). A 404 or 400 means another
// receiver owns the message now: Lost fires and the job must stop without publishing. Complete deletes the
// message; Release makes it visible again after a delay (a retry); disposing without either leaves it to
// reappear when its visibility runs out (a crash does the same).
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Worker.Queue;

internal sealed class MessageLease : IAsyncDisposable
{
    private readonly QueueClient _queue;
    private readonly string _messageId;
    private readonly TimeSpan _visibility;
    private readonly Func<DateTimeOffset, Task>? _onRenewed;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _lost = new();
    private string _popReceipt;
    private Task _loop = Task.CompletedTask;

    private MessageLease(QueueClient queue, QueueMessage message, TimeSpan visibility, Func<DateTimeOffset, Task>? onRenewed, ILogger log)
    {
        _queue = queue;
        _messageId = message.MessageId;
        _popReceipt = message.PopReceipt;
        _visibility = visibility;
        _onRenewed = onRenewed;
        _log = log;
        VisibleUntil = message.NextVisibleOn ?? DateTimeOffset.UtcNow + visibility;
    }

    public DateTimeOffset VisibleUntil { get; private set; }
    public CancellationToken Lost => _lost.Token;
    public bool IsLost => _lost.IsCancellationRequested;

    /// <param name="onRenewed">Called with the new visibility deadline after each renewal (the job's claim follows it).</param>
    public static MessageLease Start(QueueClient queue, QueueMessage message, TimeSpan visibility, Func<DateTimeOffset, Task>? onRenewed, ILogger log)
    {
        var lease = new MessageLease(queue, message, visibility, onRenewed, log);
        lease._loop = lease.RenewLoopAsync();
        return lease;
    }

    private async Task RenewLoopAsync()
    {
        while (true)
        {
            try
            {
                await Task.Delay(_visibility / 3, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                // Not cancellable on purpose: an update the service applied but we never heard back from
                // would leave us holding a stale pop receipt.
                var receipt = await _queue.UpdateMessageAsync(_messageId, _popReceipt, visibilityTimeout: _visibility).ConfigureAwait(false);
                _popReceipt = receipt.Value.PopReceipt;
                VisibleUntil = receipt.Value.NextVisibleOn;
                if (_onRenewed != null) await _onRenewed(VisibleUntil).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status is 400 or 404)
            {
                _log.LogWarning("lost the lease on message {MessageId} ({Status} {Code}); stopping the job without publishing", _messageId, e.Status, e.ErrorCode);
                _lost.Cancel();
                return;
            }
            catch (Exception e)
            {
                // Transient trouble: try again next round; the message stays hidden until VisibleUntil anyway.
                _log.LogWarning("could not renew message {MessageId}: {Error}", _messageId, e.Message);
            }
        }
    }

    private async Task StopRenewingAsync()
    {
        if (!_stop.IsCancellationRequested) _stop.Cancel();
        await _loop.ConfigureAwait(false);
    }

    /// <summary>Deletes the message: the job is done (succeeded, or failed for good).</summary>
    public async Task CompleteAsync()
    {
        await StopRenewingAsync().ConfigureAwait(false);
        if (IsLost) return;
        try
        {
            await _queue.DeleteMessageAsync(_messageId, _popReceipt).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 400 or 404)
        {
            _log.LogWarning("message {MessageId} was already gone when deleting it ({Status})", _messageId, e.Status);
        }
    }

    /// <summary>Makes the message visible again after <paramref name="delay"/>, for another attempt.</summary>
    public async Task ReleaseAsync(TimeSpan delay)
    {
        await StopRenewingAsync().ConfigureAwait(false);
        if (IsLost) return;
        try
        {
            await _queue.UpdateMessageAsync(_messageId, _popReceipt, visibilityTimeout: delay).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status is 400 or 404)
        {
            _log.LogWarning("message {MessageId} was gone when releasing it ({Status})", _messageId, e.Status);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopRenewingAsync().ConfigureAwait(false);
        _stop.Dispose();
        _lost.Dispose();
    }
}
