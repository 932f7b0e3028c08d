// Times LinearAssignment.Solve on n×n problems, to compare with SciPy's linear_sum_assignment
// (reference/rebasin-soups.md §6 table), and one full weight matching of the paper's MNIST MLP shape.
// Usage: dotnet run -c Release --project bench/CloudSoup.Bench [maxN | wm]
using System.Diagnostics;
using CloudSoup.Core.Alignment;
using TorchSharp;

if (args.Length > 0 && args[0] == "wm")
{
    WeightMatchingMlp();
    return;
}
int maxN = args.Length > 0 ? int.Parse(args[0]) : 4096;
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

// Weight matching of two independent random 784-512-512-512-10 MLPs (the paper's MNIST shape), float32 weights.
static void WeightMatchingMlp()
{
    int[] widths = [784, 512, 512, 512, 10];
    Dictionary<string, torch.Tensor> Model(int seed)
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
    var a = Model(1);
    var b = Model(2);
    var spec = BuiltinSpecs.Auto(a.ToDictionary(kv => kv.Key, kv => kv.Value.shape));
    var sw = Stopwatch.StartNew();
    var r = WeightMatching.Match(spec, a, b, seed: 0);
    Console.WriteLine($"weight matching 784-512-512-512-10: {sw.Elapsed.TotalSeconds:F2} s, {r.Sweeps} sweeps, objective {r.Objective[0]:F2} -> {r.Objective[^1]:F2}");
}
