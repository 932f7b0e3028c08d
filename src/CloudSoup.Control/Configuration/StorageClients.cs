// The three Azure Storage clients the service uses, built once from CloudSoupOptions. Queue messages are
// Base64 on the wire because Functions' queue bindings read and write Base64 (docs/azure-notes.md §2);
// producers and the worker must agree, so the encoding is fixed here and nowhere else.
using Azure.Core;
using Azure.Data.Tables;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Control.Configuration;

public sealed class StorageClients
{
    public StorageClients(CloudSoupOptions options)
    {
        options.Validate();
        Options = options;
        var queueOptions = new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 };
        queueOptions.MessageDecodingFailed += PoisonUndecodableAsync;
        if (options.UsesConnectionString)
        {
            Blobs = new BlobServiceClient(options.ConnectionString);
            Queues = new QueueServiceClient(options.ConnectionString, queueOptions);
            Tables = new TableServiceClient(options.ConnectionString);
        }
        else
        {
            TokenCredential credential = new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = options.ClientId });
            Blobs = new BlobServiceClient(options.BlobServiceUri, credential);
            Queues = new QueueServiceClient(options.QueueServiceUri, credential, queueOptions);
            Tables = new TableServiceClient(options.TableServiceUri, credential);
        }
    }

    public CloudSoupOptions Options { get; }
    public BlobServiceClient Blobs { get; }
    public QueueServiceClient Queues { get; }
    public TableServiceClient Tables { get; }

    public QueueClient JobsQueue => Queues.GetQueueClient(Options.JobsQueue);
    public QueueClient PoisonQueue => Queues.GetQueueClient(Options.PoisonQueue);
    public TableClient JobsTable => Tables.GetTableClient(Options.JobsTable);
    public BlobContainerClient Container(string name) => Blobs.GetBlobContainerClient(name);

    /// <summary>
    /// A message that is not Base64 (written by a producer that forgot the encoding) never reaches the worker:
    /// the SDK hands it here, and it goes to the poison queue with the reason.
    /// </summary>
    private async Task PoisonUndecodableAsync(QueueMessageDecodingFailedEventArgs args)
    {
        if (args.ReceivedMessage is not { } m || args.Queue.Name != Options.JobsQueue) return;
        var poison = new PoisonMessage(1, "the message is not Base64-encoded (queue producers must use QueueMessageEncoding.Base64)",
            null, m.Body.ToString(), m.MessageId, m.DequeueCount, DateTimeOffset.UtcNow);
        await PoisonQueue.SendMessageAsync(poison.ToJson(), timeToLive: TimeSpan.FromSeconds(-1), cancellationToken: args.CancellationToken).ConfigureAwait(false);
        await args.Queue.DeleteMessageAsync(m.MessageId, m.PopReceipt, args.CancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates the queues, containers and table the service uses when they are missing.</summary>
    /// <summary>
    /// Creates the queues, containers and table when missing. An identity whose roles cover only some of them (the
    /// worker's, scoped to the containers it uses: infra/app/rbac.bicep) is refused (403) for the others, which the
    /// infrastructure created; that is not an error.
    /// </summary>
    public async Task EnsureCreatedAsync(CancellationToken ct)
    {
        await Tolerate403(() => JobsQueue.CreateIfNotExistsAsync(cancellationToken: ct)).ConfigureAwait(false);
        await Tolerate403(() => PoisonQueue.CreateIfNotExistsAsync(cancellationToken: ct)).ConfigureAwait(false);
        foreach (var c in new[] { Options.CheckpointsContainer, Options.RecipesContainer, Options.MergedContainer, Options.JobsContainer, Options.EvalContainer }.Distinct())
            await Tolerate403(() => Container(c).CreateIfNotExistsAsync(cancellationToken: ct)).ConfigureAwait(false);
        await Tolerate403(() => JobsTable.CreateIfNotExistsAsync(ct)).ConfigureAwait(false);
    }

    private static async Task Tolerate403<T>(Func<Task<T>> create)
    {
        try { await create().ConfigureAwait(false); }
        catch (Azure.RequestFailedException e) when (e.Status == 403) { }
    }
}
