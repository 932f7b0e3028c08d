// Runs a MergePlan tensor by tensor: read each input's tensor (in parallel, ranged reads), merge it,
// convert it to the output dtype, append it to the current shard, free everything. Peak memory is about
// (number of inputs + 2) × the largest tensor, never the models' size.
using System.Diagnostics;
using CloudSoup.Core.Formats;
using CloudSoup.Core.Jobs;
using CloudSoup.Core.Storage;
using TorchSharp;

namespace CloudSoup.Core.Merging;

public sealed record MergeStats(long BytesRead, long BytesWritten, int TensorsMerged, int TensorsCopied, TimeSpan Elapsed, IReadOnlyList<string> Files);

public static class MergeExecutor
{
    /// <summary>
    /// Executes <paramref name="plan"/> into <paramref name="sink"/>. When <paramref name="keep"/> is given,
    /// every output tensor is also kept there (float32) for evaluation.
    /// </summary>
    public static async Task<MergeStats> ExecuteAsync(MergePlan plan, IOutputSink sink, IProgress<JobProgress>? progress,
        IDictionary<string, torch.Tensor>? keep, CancellationToken ct, torch.Device? device = null)
    {
        var sw = Stopwatch.StartNew();
        torch.InitializeDeviceType(DeviceType.CPU);
        var tasks = plan.Tensors.ToDictionary(t => t.Name);
        long read = 0, written = 0;
        int merged = 0, copied = 0, done = 0;
        var files = new List<string>();
        foreach (var shard in plan.Shards)
        {
            await using (var stream = await sink.CreateAsync(shard.FileName, ct).ConfigureAwait(false))
            {
                await stream.WriteAsync(shard.Header, ct).ConfigureAwait(false);
                written += shard.Header.Length;
                foreach (var outTensor in shard.Tensors)
                {
                    ct.ThrowIfCancellationRequested();
                    var task = tasks[outTensor.Name];
                    using var scope = torch.NewDisposeScope();
                    var inputs = await Task.WhenAll(task.Sources.Select(i => plan.ReadInputAsync(i, task.Name, ct))).ConfigureAwait(false);
                    read += task.Sources.Sum(i => plan.Inputs[i].Entry(task.Name).ByteLength);
                    torch.Tensor result;
                    if (task.Merge)
                    {
                        result = MergeOne(plan, task, inputs, device ?? torch.CPU).cpu();
                        merged++;
                    }
                    else
                    {
                        int from = Math.Max(0, task.Sources.ToList().IndexOf(plan.BaseIndex));
                        result = inputs[from];
                        copied++;
                    }
                    var output = result.to_type(DTypes.ToScalarType(task.OutDType)).contiguous();
                    if (output.NumberOfElements > 0)
                    {
                        var bytes = output.bytes.ToArray();
                        await stream.WriteAsync(bytes, ct).ConfigureAwait(false);
                        written += bytes.Length;
                    }
                    if (keep != null) keep[task.Name] = output.to_type(task.Merge ? torch.ScalarType.Float32 : output.dtype).clone().MoveToOuterDisposeScope();
                    done++;
                    progress?.Report(new JobProgress("merging", (double)done / plan.Tensors.Count, $"{done}/{plan.Tensors.Count} tensors"));
                }
            }
            files.Add(shard.FileName);
        }
        if (plan.Shards.Count > 1)
        {
            var index = SafetensorsLayout.BuildIndex(plan.Shards);
            await sink.WriteAllAsync(SafetensorsLayout.IndexFileName, index, ct).ConfigureAwait(false);
            files.Add(SafetensorsLayout.IndexFileName);
            written += index.Length;
        }
        return new MergeStats(read, written, merged, copied, sw.Elapsed, files);
    }

    private static torch.Tensor MergeOne(MergePlan plan, TensorTask task, torch.Tensor[] raw, torch.Device device)
    {
        var compute = DTypes.ToScalarType(plan.ComputeDType);
        var tensors = raw.Select(t => t.to(compute, device)).ToList();
        using var _ = torch.no_grad();
        int baseIdx = plan.BaseIndex >= 0 ? task.Sources.ToList().IndexOf(plan.BaseIndex) : -1;
        var input = new TensorMergeInput
        {
            TensorName = task.Name,
            Tensors = tensors,
            ModelIds = task.Sources.Select(i => plan.Inputs[i].Reference).ToList(),
            PerModel = task.Sources.Select(i => task.PerModel[i]).ToList(),
            Global = task.Global,
            Base = baseIdx >= 0 ? tensors[baseIdx] : null,
            BaseIndex = baseIdx,
            Seed = task.Seed,
        };
        var result = plan.Method.Merge(input);
        if (!result.shape.SequenceEqual(task.Shape))
            throw new InvalidOperationException($"{plan.Method.Name} returned shape [{string.Join(", ", result.shape)}] for '{task.Name}'");
        return result;
    }
}
