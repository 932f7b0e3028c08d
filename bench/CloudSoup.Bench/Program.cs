// Times LinearAssignment.Solve on n×n problems, to compare with SciPy's linear_sum_assignment
// (SciPy 1.10.1 timings on the same machine: bench/README.md), and one full weight matching of the paper's MNIST MLP shape.
// And the cost of the merge's NaN/Inf check per tensor (NonFiniteValues.Count) against a copy of the same bytes.
// And DELLA's keep masks alone (RowRanks.Keep, the fused path's mask stage) on random rows, and the fused task-vector
// combine alone (FusedTaskVectors.Combine) with bit masks (della), magnitude cuts (ties) or neither (task arithmetic).
// And one reconciler pass over a storage account holding many finished jobs (bench/reconcile/run.sh starts the Azurite).
// Usage: dotnet run -c Release --project bench/CloudSoup.Bench [maxN | wm [maxWidth] | nonfinite
//        | della-masks [rows width models runs] | combine [della|ties|task_arithmetic] [elements runs]
//        | reconcile [jobs blobs-per-folder runs]]
using System.Diagnostics;
using CloudSoup.Engine.Alignment;
using CloudSoup.Engine.Merging;
using TorchSharp;

if (args.Length > 0 && args[0] == "wm")
{
    WeightMatchingMlp(Arg(1, 4096));
    return;
}
if (args.Length > 0 && args[0] == "nonfinite")
{
    NonFiniteCost();
    return;
}
if (args.Length > 0 && args[0] == "combine")
{
    CombineCost(args.Length > 1 ? args[1] : "della", args.Length > 2 ? long.Parse(args[2]) : 16_000_000, args.Length > 3 ? int.Parse(args[3]) : 20);
    return;
}
if (args.Length > 0 && args[0] == "della-masks")
{
    DellaMasks(Arg(1, 1000), Arg(2, 1000), Arg(3, 3), Arg(4, 200));
    return;
}
if (args.Length > 0 && args[0] == "reconcile")
{
    await ReconcileBench.RunAsync(Arg(1, 2000), Arg(2, 8), Arg(3, 3));
    return;
}
int maxN = Arg(0, 4096);
int Arg(int i, int otherwise) => args.Length > i ? int.Parse(args[i]) : otherwise;
Console.WriteLine("| n | uniform random costs (ms) | weight-matching-like costs (ms) | runs |");
Console.WriteLine("|---|---|---|---|");
for (int n = 128; n <= maxN; n *= 2)
{
    int runs = n <= 512 ? 7 : n <= 1024 ? 5 : 3;
    var rng = new Random(n);
    double uniform = Median(runs, () =>
    {
        var c = new double[n * n];
        for (int k = 0; k < c.Length; k++) c[k] = rng.NextDouble();
        return c;
    }, n, maximize: false);
    double matching = Median(runs, () => MatchingLike(n, rng.Next()), n, maximize: true);
    Console.WriteLine($"| {n} | {uniform:F1} | {matching:F1} | {runs} |");
}

// Median wall time of `runs` solves, each on a freshly generated matrix (generation not timed).
static double Median(int runs, Func<double[]> make, int n, bool maximize)
{
    var times = new List<double>();
    for (int r = 0; r < runs; r++)
    {
        var c = make();
        var sw = Stopwatch.StartNew();
        var a = LinearAssignment.Solve(c, n, n, maximize);
        times.Add(sw.Elapsed.TotalMilliseconds);
        if (a.Distinct().Count() != n) throw new InvalidOperationException("not a permutation");
    }
    times.Sort();
    return times[times.Count / 2];
}

// A = W_a W_bᵀ with W_b a row-permuted W_a plus noise, as in a weight-matching step (256 inputs per unit).
static double[] MatchingLike(int n, int seed)
{
    torch.manual_seed(seed);
    using var scope = torch.NewDisposeScope();
    var wa = torch.randn(n, 256, torch.float64);
    var wb = wa.index_select(0, torch.randperm(n)) + 0.5 * torch.randn(n, 256, torch.float64);
    return wa.mm(wb.t()).contiguous().data<double>().ToArray();
}

// Weight matching of 784-w-w-w-10 MLPs (the paper's MNIST shape at w = 512) for w = 512 … maxWidth, float32
// weights. Two cases per width: B is an independent random model (the search runs until no permutation
// improves), and B is a hidden-unit-permuted copy of A plus 1% noise (the known permutation must be recovered).
static void WeightMatchingMlp(int maxWidth)
{
    Console.WriteLine("| width | parameters | independent: seconds | sweeps | permuted copy: seconds | sweeps | units recovered |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    for (int w = 512; w <= maxWidth; w *= 2)
    {
        int[] widths = [784, w, w, w, 10];
        var a = RandomMlp(widths, 1);
        var b = RandomMlp(widths, 2);
        var spec = BuiltinSpecs.Auto(a.ToDictionary(kv => kv.Key, kv => kv.Value.shape));
        var sw = Stopwatch.StartNew();
        var independent = WeightMatching.Match(spec, a, b, seed: 0);
        double tIndependent = sw.Elapsed.TotalSeconds;

        // B' = π(A) + noise: matching B' to A must find π⁻¹ for every permutation.
        var rng = new Random(w);
        var truth = spec.Names.ToDictionary(n => n, n => Enumerable.Range(0, w).OrderBy(_ => rng.Next()).ToArray());
        var permuted = Permutations.Apply(spec, truth, a);
        var noisy = permuted.ToDictionary(kv => kv.Key, kv => kv.Value + 0.01 * torch.randn_like(kv.Value));
        sw.Restart();
        var recovered = WeightMatching.Match(spec, a, noisy, seed: 0);
        double tPermuted = sw.Elapsed.TotalSeconds;
        var restored = Permutations.Apply(spec, recovered.Permutations, noisy);
        long units = 0, right = 0;
        foreach (var name in spec.Names)
        {
            // A unit is recovered when the aligned B' row equals A's row up to the noise.
            var axis = spec.AxesOf(name).First(x => x.Axis == 0);
            var diff = (restored[axis.Tensor] - a[axis.Tensor]).abs().amax(1);
            units += w;
            right += (diff < 0.1).sum().item<long>();
        }
        long parameters = a.Values.Sum(t => t.numel());
        Console.WriteLine($"| {w} | {parameters:N0} | {tIndependent:F2} | {independent.Sweeps} | {tPermuted:F2} | {recovered.Sweeps} | {right}/{units} |");
        foreach (var d in new[] { a, b, permuted, noisy, restored }) foreach (var t in d.Values) t.Dispose();
    }
}

static Dictionary<string, torch.Tensor> RandomMlp(int[] widths, int seed)
{
    torch.manual_seed(seed);
    var d = new Dictionary<string, torch.Tensor>();
    for (int k = 0; k + 1 < widths.Length; k++)
    {
        d[$"fc{k + 1}.weight"] = torch.randn(widths[k + 1], widths[k]) / Math.Sqrt(widths[k]);
        d[$"fc{k + 1}.bias"] = torch.randn(widths[k + 1]) * 0.1;
    }
    return d;
}

// NonFiniteValues.Count on one 200 MB tensor per dtype: the finite case (one aminmax pass, what nearly every tensor costs),
// the exact count it falls back to when the sum is not finite, and a plain copy of the tensor for scale. Median of 7.
static void NonFiniteCost()
{
    torch.InitializeDeviceType(DeviceType.CPU);
    Console.WriteLine($"| dtype | MB | check, finite tensor (ms) | exact count, one NaN (ms) | copy (ms) | check GB/s |");
    Console.WriteLine("|---|---|---|---|---|---|");
    foreach (var dtype in new[] { torch.ScalarType.Float32, torch.ScalarType.BFloat16, torch.ScalarType.Float16 })
    {
        long bytes = 200_000_000;
        long n = bytes / (dtype == torch.ScalarType.Float32 ? 4 : 2);
        using var finite = torch.randn(n).to_type(dtype);
        using var broken = finite.clone();
        broken[n / 2] = float.NaN;
        double Time(Action a)
        {
            var times = new List<double>();
            for (int r = 0; r < 7; r++)
            {
                var sw = Stopwatch.StartNew();
                a();
                times.Add(sw.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            return times[3];
        }
        double check = Time(() => { if (NonFiniteValues.Count(finite) != null) throw new InvalidOperationException("finite tensor reported"); });
        double exact = Time(() => { if (NonFiniteValues.Count(broken) is not { Nan: 1 }) throw new InvalidOperationException("NaN not counted"); });
        double copy = Time(() => { using var c = finite.clone(); });
        Console.WriteLine($"| {dtype} | {bytes / 1_000_000} | {check:F1} | {exact:F1} | {copy:F1} | {bytes / check / 1e6:F1} |");
    }
}

// DELLA's keep masks as the fused della merge draws them (RowRanks.Keep: uniforms, magnitudes, buckets, exact ranks
// where needed, the bits and the L1 rescale's row sums) for `models` models of rows × width over one base, uniform
// values in [−1, 1) as bench/merge-throughput/make_models.py writes (density 0.5, ε 0.15). Times each call on every
// core the process may use (run under `taskset -c 0` for one); prints the best, the 10th percentile and the median,
// the best per entry, and a hash of the masks (the same on every build that draws the same masks).
static unsafe void DellaMasks(int rows, int width, int models, int runs)
{
    long n = (long)rows * width;
    var random = new Random(1);
    var inputs = Enumerable.Range(0, models + 1).Select(_ => Enumerable.Range(0, (int)n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray()).ToArray();
    var masks = Enumerable.Range(0, models).Select(_ => new byte[KeepBits.Bytes(n)]).ToArray();
    var handles = inputs.Select(a => System.Runtime.InteropServices.GCHandle.Alloc(a, System.Runtime.InteropServices.GCHandleType.Pinned))
        .Concat(masks.Select(a => System.Runtime.InteropServices.GCHandle.Alloc(a, System.Runtime.InteropServices.GCHandleType.Pinned))).ToList();
    var map = new RankMap(0.35f, 0.3f, width - 1);
    var jobs = Enumerable.Range(0, models).Select(m => new RowRanks.KeepJob
    {
        X = (float*)handles[m + 1].AddrOfPinnedObject(), B = (float*)handles[0].AddrOfPinnedObject(), Rows = rows, Width = width, Map = map,
        Uniforms = start => SeededMaskProvider.UniformsFrom(1234 + m, start), Keep = (byte*)handles[models + 1 + m].AddrOfPinnedObject(),
        Before = new double[rows], After = new double[rows],
    }).ToList();
    var times = new List<double>();
    for (int r = 0; r < runs; r++)
    {
        var sw = Stopwatch.StartNew();
        if (!RowRanks.Keep(jobs)) throw new InvalidOperationException("NaN in random inputs");
        times.Add(sw.Elapsed.TotalMilliseconds);
    }
    handles.ForEach(h => h.Free());
    times.Sort();
    ulong hash = 14695981039346656037;
    foreach (var mask in masks)
        foreach (var b in mask) hash = (hash ^ b) * 1099511628211;
    Console.WriteLine($"della masks, {models} × {rows} × {width}, {runs} runs: best {times[0]:F1} ms, p10 {times[runs / 10]:F1} ms, median {times[runs / 2]:F1} ms; "
        + $"{times[0] * 1e6 / (n * models):F2} ns an entry (best); masks {hash:X16}");
}

// FusedTaskVectors.Combine over a base and three models of `n` uniform values in [−1, 1), weight 0.5: della's terms (a
// random bit mask and an L1 factor each, sign consensus), ties' (a whole cut at |δ| > 0.5, sign consensus) or task
// arithmetic's (neither). Times each call on every core; prints the best, the 10th percentile and the median, the
// best per element, and a hash of the output (the same on every build that merges the same bytes).
static unsafe void CombineCost(string kind, long n, int runs)
{
    const int models = 3;
    var random = new Random(1);
    var inputs = Enumerable.Range(0, models + 1).Select(_ => Enumerable.Range(0, (int)n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray()).ToArray();
    var masks = Enumerable.Range(0, models).Select(_ => { var m = new byte[KeepBits.Bytes(n)]; random.NextBytes(m); return m; }).ToArray();
    var output = new float[n];
    var handles = inputs.Concat<Array>(masks).Append(output).Select(a => System.Runtime.InteropServices.GCHandle.Alloc(a, System.Runtime.InteropServices.GCHandleType.Pinned)).ToList();
    nint At(int i) => handles[i].AddrOfPinnedObject();
    var terms = Enumerable.Range(0, models).Select(m => kind switch
    {
        "della" => new FusedTerm { Model = At(m + 1), KeepMask = At(models + 1 + m), MultiplyBy = 1.9f, Weight = 0.5f },
        "ties" => new FusedTerm { Model = At(m + 1), Upper = new MagnitudeCut(BitConverter.SingleToInt32Bits(0.5f), 0), Weight = 0.5f },
        "task_arithmetic" => new FusedTerm { Model = At(m + 1), Weight = 0.5f },
        _ => throw new ArgumentException($"combine: della, ties or task_arithmetic, not {kind}"),
    }).ToArray();
    var times = new List<double>();
    for (int r = 0; r < runs; r++)
    {
        var sw = Stopwatch.StartNew();
        FusedTaskVectors.Combine((float*)At(0), (float*)At(2 * models + 1), n, terms, signConsensus: kind != "task_arithmetic", normalize: false, total: 1.5, lambda: 1.0);
        times.Add(sw.Elapsed.TotalMilliseconds);
    }
    handles.ForEach(h => h.Free());
    times.Sort();
    ulong hash = 14695981039346656037;
    foreach (var x in output) hash = (hash ^ BitConverter.SingleToUInt32Bits(x)) * 1099511628211;
    Console.WriteLine($"combine {kind}, 3 models × {n:N0}, {runs} runs: best {times[0]:F1} ms, p10 {times[runs / 10]:F1} ms, median {times[runs / 2]:F1} ms; "
        + $"{times[0] * 1e6 / n:F2} ns an element (best); output {hash:X16}");
}
