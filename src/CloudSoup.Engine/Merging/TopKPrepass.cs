// Whole-model top-k for TIES (topk_scope: model; Yadav et al. 2023's official code,
// prateeky2806/ties-merging src/utils/merge_utils.py):
// each task vector δ_i = x_i − b keeps its entries with |δ| ≥ the k-th largest |δ| over ALL its tensors,
// k = int(density · n). The threshold is found exactly without holding the model in memory: |δ| as float32 is a
// non-negative float, whose bit pattern orders like an integer, so one pass counts the high 16 bits in 65,536
// bins, and a second pass counts the low 16 bits inside the bin that holds the k-th largest value. Memory: one
// tensor per model at a time plus two 65,536-bin histograms per model; cost: the inputs are read twice more.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

public static class TopKPrepass
{
    public static async Task<(MergePlan Plan, string Note)> RunAsync(MergePlan plan, Func<IReadOnlyDictionary<string, double>, TaskArithmeticFamily> withThresholds,
        IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var tasks = plan.Tensors.Where(t => t.Merge).ToList();
        if (tasks.Any(t => !TaskVectorSignature.WholeModelTopK(t.Global)))
            throw CloudSoupException.Recipe("parameters.topk_scope", "whole-model top-k decides one threshold per model, so topk_scope cannot vary by tensor (filters)");
        var models = Enumerable.Range(0, plan.Inputs.Count).Where(i => i != plan.BaseIndex).ToList();
        var density = new Dictionary<int, double>();
        foreach (int i in models)
        {
            var values = tasks.Where(t => t.Sources.Contains(i)).Select(t => t.PerModel[i].NumberOrNull("density") ?? 1.0).Distinct().ToList();
            if (values.Count > 1)
                throw CloudSoupException.Recipe(i < plan.Recipe.Models.Count ? $"models[{i}].parameters.density" : "parameters.density",
                    $"whole-model top-k needs one density per model, but {plan.Inputs[i].Reference} resolves to {string.Join(", ", values)} on different tensors");
            density[i] = values.Count == 0 ? 1.0 : values[0];
        }

        // Pass 1: high 16 bits of every |δ|; pass 2: low 16 bits inside the bin holding the k-th largest.
        var high = models.ToDictionary(i => i, _ => new long[65536]);
        long[] total = new long[plan.Inputs.Count];
        await ForEachDeltaAsync(plan, tasks, models, (i, bits) =>
        {
            var h = high[i];
            foreach (int b in bits) h[(int)((uint)b >> 16)]++;
            total[i] += bits.Length;
        }, progress, 0, ct).ConfigureAwait(false);

        var thresholds = new Dictionary<string, double>(StringComparer.Ordinal);
        var boundary = new Dictionary<int, (int Bin, long Remaining)>();
        foreach (int i in models)
        {
            long k = (long)(density[i] * total[i]);
            if (density[i] >= 1 || k >= total[i]) { thresholds[plan.Inputs[i].Reference] = 0; continue; }           // keep everything
            if (k == 0) { thresholds[plan.Inputs[i].Reference] = double.PositiveInfinity; continue; }                  // keep nothing
            long seen = 0;
            for (int bin = 65535; bin >= 0; bin--)
            {
                if (seen + high[i][bin] >= k) { boundary[i] = (bin, k - seen); break; }
                seen += high[i][bin];
            }
        }
        if (boundary.Count > 0)
        {
            var low = boundary.Keys.ToDictionary(i => i, _ => new long[65536]);
            await ForEachDeltaAsync(plan, tasks, boundary.Keys.ToList(), (i, bits) =>
            {
                var (bin, _) = boundary[i];
                var l = low[i];
                foreach (int b in bits)
                    if ((int)((uint)b >> 16) == bin) l[b & 0xFFFF]++;
            }, progress, 0.5, ct).ConfigureAwait(false);
            foreach (var (i, (bin, remaining)) in boundary)
            {
                long seen = 0;
                for (int lo = 65535; lo >= 0; lo--)
                {
                    seen += low[i][lo];
                    if (seen >= remaining)
                    {
                        thresholds[plan.Inputs[i].Reference] = BitConverter.Int32BitsToSingle((bin << 16) | lo);
                        break;
                    }
                }
            }
        }
        string note = "whole-model top-k thresholds |δ| ≥ " + string.Join(", ", models.Select(i =>
            $"{plan.Inputs[i].Reference}: {thresholds[plan.Inputs[i].Reference].ToString("G6", System.Globalization.CultureInfo.InvariantCulture)} (density {density[i]})"));
        return (plan.WithMethod(withThresholds(thresholds)), note);
    }

    /// <summary>Calls <paramref name="visit"/> with the float32 bit patterns of |x_i − b| for every merged tensor and model.</summary>
    private static async Task ForEachDeltaAsync(MergePlan plan, IReadOnlyList<TensorTask> tasks, IReadOnlyList<int> models, Action<int, ReadOnlySpan<int>> visit,
        IProgress<JobProgress>? progress, double start, CancellationToken ct)
    {
        int done = 0;
        foreach (var task in tasks)
        {
            ct.ThrowIfCancellationRequested();
            int baseAt = task.Sources.ToList().IndexOf(plan.BaseIndex);
            if (baseAt < 0) throw CloudSoupException.Recipe("base_model", $"the base model has no tensor '{task.Name}'");
            using var owned = new OwnedTensors();
            var raw = owned.Add(await plan.ReadInputAsync(plan.BaseIndex, task.Name, ct).ConfigureAwait(false));
            var b = owned.Add(raw.to_type(torch.ScalarType.Float32));
            foreach (int i in models.Where(task.Sources.Contains))
            {
                using var x = await plan.ReadInputAsync(i, task.Name, ct).ConfigureAwait(false);
                using var scope = torch.NewDisposeScope();   // synchronous from here (see OwnedTensors)
                var mag = (x.to_type(torch.ScalarType.Float32) - b).abs().contiguous();
                if (mag.NumberOfElements > 0)
                    visit(i, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(mag.bytes));
            }
            done++;
            progress?.Report(new JobProgress(JobPhase.Prepass, start + 0.5 * done / tasks.Count, $"{done}/{tasks.Count} tensors"));
        }
    }
}
