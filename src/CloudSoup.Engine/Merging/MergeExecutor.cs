// Runs a MergePlan tensor by tensor: read each input's tensor (in parallel, ranged reads), merge it,
// convert it to the output dtype, append it to the current shard, free everything. Peak memory is about
// (number of inputs + 2) × the largest tensor, never the models' size. Every input and output tensor is checked
// for NaN/infinite values on the way (NonFiniteValues: one min/max pass each), counted for the report or refused.
using CloudSoup.Control.Errors;
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using System.Diagnostics;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

public sealed record MergeStats(long BytesRead, long BytesWritten, int TensorsMerged, int TensorsCopied, TimeSpan Elapsed, IReadOnlyList<string> Files)
{
    /// <summary>What the method reported per tensor (e.g. agreement's accepted models).</summary>
    public IReadOnlyDictionary<string, string> MethodNotes { get; init; } = new Dictionary<string, string>();

    /// <summary>Tensors with NaN or infinite values in an input or in the output, in merge order (NonFiniteValues).</summary>
    public IReadOnlyList<NonFiniteTensor> NonFinite { get; init; } = [];
}

/// <summary>
/// Outputs written last, after every other tensor is merged, through <see cref="Replace"/> (e.g. BatchNorm running
/// statistics re-estimated from the merged weights). The planner puts them at the end of the last shard.
/// <see cref="Replace"/> sees every kept output and returns replacements by name (null: keep the merged values).
/// </summary>
public sealed record DeferredOutputs(IReadOnlySet<string> Names, Func<IDictionary<string, torch.Tensor>, CancellationToken, Task<IReadOnlyDictionary<string, torch.Tensor>?>> Replace);

public static class MergeExecutor
{
    /// <summary>
    /// Executes <paramref name="plan"/> into <paramref name="sink"/>. When <paramref name="keep"/> is given,
    /// every output tensor is also kept there (float32) for evaluation.
    /// </summary>
    public static async Task<MergeStats> ExecuteAsync(MergePlan plan, IOutputSink sink, IProgress<JobProgress>? progress,
        IDictionary<string, torch.Tensor>? keep, CancellationToken ct, torch.Device? device = null, DeferredOutputs? deferred = null)
    {
        var waiting = deferred?.Names.Where(n => plan.Tensors.Any(t => t.Name == n)).ToHashSet(StringComparer.Ordinal) ?? [];
        if (waiting.Count > 0)
        {
            if (keep is null) throw new ArgumentException("deferred outputs need the kept outputs", nameof(keep));
            var tail = plan.Shards[^1].Tensors.TakeLast(waiting.Count).Select(t => t.Name);
            if (!tail.All(waiting.Contains)) throw new InvalidOperationException("deferred outputs must be the last tensors of the last shard");
        }
        var pending = new List<(TensorTask Task, torch.Tensor Output)>();
        var sw = Stopwatch.StartNew();
        torch.InitializeDeviceType(DeviceType.CPU);
        var tasks = plan.Tensors.ToDictionary(t => t.Name);
        long read = 0, written = 0;
        int merged = 0, copied = 0, done = 0;
        var files = new List<string>();
        var notes = new Dictionary<string, string>();
        var nonFinite = new List<NonFiniteTensor>();
        bool refuse = plan.Recipe.NonFinite == NonFinitePolicy.Refuse;
        using var buffers = new OutputBuffers();
        using var scratch = new ScratchBuffers();
        try
        {
            foreach (var shard in plan.Shards)
            {
                await using (var stream = await sink.CreateAsync(shard.FileName, ct).ConfigureAwait(false))
                {
                    await stream.WriteAsync(shard.Header, ct).ConfigureAwait(false);
                    written += shard.Header.Length;
                    // Each output is written while the next one merges; the writer waits for a write in flight before
                    // the stream is closed, on success and on failure alike.
                    await using var writer = new OverlappedTensorWriter(stream, buffers);
                    foreach (var outTensor in shard.Tensors)
                    {
                        ct.ThrowIfCancellationRequested();
                        var task = tasks[outTensor.Name];
                        // Reads are awaited outside any dispose scope (see OwnedTensors); only the synchronous merge runs in one.
                        torch.Tensor output;
                        long recycle;
                        long inputBytes = task.Sources.Sum(i => plan.Inputs[i].Entry(task.Name).ByteLength);
                        using (var owned = new OwnedTensors())
                        {
                            var inputs = await plan.ReadInputsAsync(task.Sources, task.Name, owned, ct).ConfigureAwait(false);
                            read += inputBytes;
                            // Inputs are checked for NaN/±inf before the merge, except for a method whose output would show
                            // them anyway (INonFinitePropagating): then a finite output proves the inputs finite.
                            bool outputFirst = task.Merge && plan.Method is INonFinitePropagating p
                                && p.EveryInputReachesTheOutput(task.Sources.Select(i => task.PerModel[i]).ToList(), task.Global);
                            // A method whose kernel may vouch for its inputs has them counted after the merge, if at all.
                            bool inputsAfter = task.Merge && !outputFirst && plan.Method is IVouchesForInputs;
                            List<NonFiniteInput> badInputs = outputFirst || inputsAfter ? [] : CountNonFinite(plan, task, inputs, refuse);
                            var (aux, globalAux, auxBytes) = task.Merge ? await ReadAuxiliaryAsync(plan, task, owned, ct).ConfigureAwait(false) : ([], [], 0);
                            read += auxBytes;
                            using var scope = torch.NewDisposeScope();
                            torch.Tensor result;
                            NonFiniteCount? badResult = null;
                            if (task.Merge)
                            {
                                result = MergeOne(plan, task, inputs, aux, globalAux, note => notes[task.Name] = note, device ?? torch.CPU, buffers, scratch).cpu();
                                // A fused kernel that saw every output element finite has said so (OutputBuffers.VouchFinite).
                                if (outputFirst && !buffers.IsVouchedFinite(result) && (badResult = NonFiniteValues.Count(result)) != null)
                                    badInputs = CountNonFinite(plan, task, inputs, refuse);
                                if (inputsAfter && !buffers.AreInputsVouchedFinite(result))
                                    badInputs = CountNonFinite(plan, task, inputs, refuse);
                                merged++;
                            }
                            else
                            {
                                int from = Math.Max(0, task.Sources.ToList().IndexOf(plan.BaseIndex));
                                result = inputs[from];
                                copied++;
                            }
                            // A new handle (sharing storage when nothing changed), so it outlives the inputs' handles.
                            var converted = result.to_type(TorchDTypes.ToScalarType(task.OutDType)).contiguous();
                            // The result's count stands for the output's when the conversion changed nothing.
                            var badOutput = converted.dtype == result.dtype && (outputFirst || (task.Merge && buffers.IsVouchedFinite(result)))
                                ? badResult : NonFiniteValues.Count(converted);
                            if (badOutput != null && refuse)
                                throw new CloudSoupException(ErrorKind.InvalidRecipe,
                                    $"nonfinite: the merged tensor '{task.Name}' has {badOutput} although its inputs are finite (values beyond {DTypes.RecipeName(task.OutDType)}'s range?); nonfinite: refuse rejects such outputs", "nonfinite");
                            if (badInputs.Count > 0 || badOutput != null)
                                nonFinite.Add(new NonFiniteTensor(task.Name, badInputs, badOutput?.Nan ?? 0, badOutput?.Inf ?? 0));
                            // While the result is alive: is the output the reused buffer the method took (then it comes back once written)?
                            recycle = buffers.TakeBack(converted);
                            output = converted.DetachFromDisposeScope();
                            if (keep != null) keep[task.Name] = output.to_type(task.Merge ? torch.ScalarType.Float32 : output.dtype).clone().DetachFromDisposeScope();
                        }
                        done++;
                        progress?.Report(new JobProgress(JobPhase.Merging, (double)done / plan.Tensors.Count, $"{done}/{plan.Tensors.Count} tensors"));
                        if (waiting.Contains(task.Name))
                        {
                            pending.Add((task, output));
                            if (pending.Count < waiting.Count) continue;
                            // Every other tensor is written and kept: let the caller replace the deferred ones, then write them.
                            written += await writer.FlushAsync().ConfigureAwait(false);
                            written += await WriteDeferredAsync(stream, pending, deferred!, keep!, ct).ConfigureAwait(false);
                            continue;
                        }
                        written += await writer.WriteAsync(output, ct, recycle).ConfigureAwait(false);   // disposes or recycles output once written
                        NativeHeap.Freed(inputBytes + outTensor.ByteLength);
                    }
                    written += await writer.FlushAsync().ConfigureAwait(false);
                }
                files.Add(shard.FileName);
            }
        }
        finally
        {
            foreach (var (_, t) in pending) t.Dispose();
        }
        if (plan.Shards.Count > 1 && plan.WritesIndex)
        {
            var index = SafetensorsLayout.BuildIndex(plan.Shards);
            await sink.WriteAllAsync(SafetensorsLayout.IndexFileName, index, ct).ConfigureAwait(false);
            files.Add(SafetensorsLayout.IndexFileName);
            written += index.Length;
        }
        return new MergeStats(read, written, merged, copied, sw.Elapsed, files) { MethodNotes = notes, NonFinite = nonFinite };
    }

    /// <summary>
    /// Each input's NaN/infinite count for this tensor (only the inputs that have any); with <paramref name="refuse"/>,
    /// the first such input fails the job, naming the model and the tensor.
    /// </summary>
    private static List<NonFiniteInput> CountNonFinite(MergePlan plan, TensorTask task, torch.Tensor[] inputs, bool refuse)
    {
        var found = new List<NonFiniteInput>();
        for (int j = 0; j < inputs.Length; j++)
        {
            if (NonFiniteValues.Count(inputs[j]) is not { } count) continue;
            string model = plan.Inputs[task.Sources[j]].Reference;
            if (refuse)
                throw CloudSoupException.Checkpoint(model, $"tensor '{task.Name}' has {count}; the recipe's nonfinite: refuse rejects such inputs (nonfinite: warn merges them and lists them in the report)");
            found.Add(new NonFiniteInput(model, count.Nan, count.Inf));
        }
        return found;
    }

    /// <summary>
    /// Asks <paramref name="deferred"/> for replacements of the pending outputs (every other output is in <paramref name="keep"/>
    /// by now), writes them in order and updates <paramref name="keep"/>; returns the bytes written.
    /// </summary>
    private static async Task<long> WriteDeferredAsync(Stream stream, List<(TensorTask Task, torch.Tensor Output)> pending, DeferredOutputs deferred,
        IDictionary<string, torch.Tensor> keep, CancellationToken ct)
    {
        var replacements = await deferred.Replace(keep, ct).ConfigureAwait(false);
        long written = 0;
        try
        {
            foreach (var (t, merged) in pending)
            {
                torch.Tensor final = merged;
                if (replacements != null && replacements.TryGetValue(t.Name, out var r))
                {
                    using var scope = torch.NewDisposeScope();
                    final = r.to_type(TorchDTypes.ToScalarType(t.OutDType)).contiguous().clone().DetachFromDisposeScope();
                    if (!final.shape.SequenceEqual(t.Shape))
                    {
                        final.Dispose();
                        throw new InvalidOperationException($"the replacement for '{t.Name}' has the wrong shape");
                    }
                    keep[t.Name].Dispose();
                    keep[t.Name] = final.to_type(torch.ScalarType.Float32).clone().DetachFromDisposeScope();
                }
                try
                {
                    written += await WriteAsync(stream, final, ct).ConfigureAwait(false);
                }
                finally
                {
                    if (!ReferenceEquals(final, merged)) final.Dispose();
                }
            }
        }
        finally
        {
            if (replacements != null) foreach (var r in replacements.Values) r.Dispose();
        }
        return written;
    }

    /// <summary>Appends a tensor's bytes from its own memory (no managed copy); returns the bytes written.</summary>
    private static async Task<long> WriteAsync(Stream stream, torch.Tensor output, CancellationToken ct)
    {
        if (output.NumberOfElements == 0) return 0;
        using var native = new NativeMemory(output.bytes);
        await stream.WriteAsync(native.Memory, ct).ConfigureAwait(false);
        return native.Memory.Length;
    }

    /// <summary>Reads the tensors named by the method's Reference parameters (e.g. each model's Fisher) for one task.</summary>
    private static async Task<(List<IReadOnlyDictionary<string, torch.Tensor>>, Dictionary<string, torch.Tensor>, long)> ReadAuxiliaryAsync(
        MergePlan plan, TensorTask task, OwnedTensors owned, CancellationToken ct)
    {
        var refs = plan.Method.Parameters.Where(p => p.Kind == ParameterKind.Reference).ToList();
        var perModel = new List<IReadOnlyDictionary<string, torch.Tensor>>();
        var global = new Dictionary<string, torch.Tensor>();
        long bytes = 0;
        if (refs.Count == 0) return (perModel, global, 0);
        async Task Load(Dictionary<string, torch.Tensor> into, ResolvedParameters values, ParameterSpec spec)
        {
            if (!values.Values.TryGetValue(spec.Name, out var v) || v.Text is not string reference) return;
            var ck = plan.Auxiliary[reference];
            into[spec.Name] = owned.Add(await ck.ReadTensorAsync(task.Name, ct).ConfigureAwait(false));
            bytes += ck.Entry(task.Name).ByteLength;
        }
        foreach (int i in task.Sources)
        {
            var d = new Dictionary<string, torch.Tensor>();
            foreach (var spec in refs.Where(r => r.PerModel)) await Load(d, task.PerModel[i], spec).ConfigureAwait(false);
            perModel.Add(d);
        }
        foreach (var spec in refs.Where(r => !r.PerModel)) await Load(global, task.Global, spec).ConfigureAwait(false);
        return (perModel, global, bytes);
    }

    private static torch.Tensor MergeOne(MergePlan plan, TensorTask task, torch.Tensor[] raw, IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>> aux,
        IReadOnlyDictionary<string, torch.Tensor> globalAux, Action<string> note, torch.Device device, OutputBuffers buffers, ScratchBuffers scratch)
    {
        var compute = TorchDTypes.ToScalarType(plan.ComputeDType);
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
            Auxiliary = aux.Select(d => (IReadOnlyDictionary<string, torch.Tensor>)d.ToDictionary(kv => kv.Key, kv => kv.Value.to(compute, device))).ToList(),
            GlobalAuxiliary = globalAux.ToDictionary(kv => kv.Key, kv => kv.Value.to(compute, device)),
            Note = note,
            OutputBuffers = buffers,
            Scratch = scratch,
        };
        var result = plan.Method.Merge(input);
        if (!result.shape.SequenceEqual(task.Shape))
            throw new InvalidOperationException($"{plan.Method.Name} returned shape [{string.Join(", ", result.shape)}] for '{task.Name}'");
        return result;
    }
}
