// The job-level soup step: load every ingredient once into memory, evaluate candidate soups on the held-out
// split without touching storage again, and let the soup (ISoup: uniform, greedy, pruned, learned) decide the
// mixing coefficients. The job then merges with those coefficients through the normal executor, so output
// writing and sharding stay one code path.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Merging;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Soups;

public sealed class SoupSearch : IDisposable
{
    private readonly IEvalModel _model;
    private readonly EvalData _heldOut;
    private readonly int _batchSize;
    private readonly List<string> _mixed;            // float tensors, mixed by the coefficients
    private readonly Dictionary<string, torch.Tensor> _candidate; // reused buffer for every candidate soup
    internal readonly List<string> Models;
    internal readonly List<Dictionary<string, torch.Tensor>> Ingredients;

    private readonly List<torch.Tensor> _layoutOwned;   // tensors read only to lay out the candidate (a part's model-0 non-float tensors)

    /// <param name="ingredients">Every ingredient by recipe order (float tensors as float32); a soup's part loads only its own and leaves the others empty.</param>
    /// <param name="layout">The candidate's tensors in model 0's order: float ones give the buffer's shape, the others are used as model 0 has them.</param>
    private SoupSearch(IEvalModel model, EvalData heldOut, int batchSize, List<string> models, List<Dictionary<string, torch.Tensor>> ingredients,
        IReadOnlyDictionary<string, torch.Tensor> layout, List<torch.Tensor>? layoutOwned = null)
    {
        _model = model;
        _heldOut = heldOut;
        _batchSize = batchSize;
        Models = models;
        Ingredients = ingredients;
        _layoutOwned = layoutOwned ?? [];
        _mixed = layout.Where(kv => kv.Value.is_floating_point()).Select(kv => kv.Key).ToList();
        _candidate = layout.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? torch.zeros_like(kv.Value) : kv.Value.alias());
    }

    internal IEvalModel Model => _model;
    internal EvalData HeldOut => _heldOut;
    internal int BatchSize => _batchSize;
    internal IReadOnlyList<string> MixedTensors => _mixed;
    public int CandidatesEvaluated { get; private set; }

    /// <summary>Bytes the search holds: every ingredient as float32 plus one candidate buffer.</summary>
    public static long MemoryNeeded(IReadOnlyList<Checkpoint> checkpoints)
    {
        long perModel = checkpoints[0].TensorNames.Sum(n =>
        {
            var e = checkpoints[0].Entry(n);
            return DTypes.IsFloat(e.DType) ? 4 * e.Shape.Aggregate(1L, (a, b) => a * b) : e.ByteLength;
        });
        return perModel * (checkpoints.Count + 1);
    }

    /// <summary>
    /// Fails, naming evaluation.memory_budget, when the search would hold more than the recipe allows: checked by the
    /// whole search, and by a split soup before its parts start (the part that completes the job holds every ingredient).
    /// </summary>
    public static long CheckMemory(Recipe recipe, ISoup soup, IReadOnlyList<Checkpoint> checkpoints)
    {
        var section = recipe.Evaluation ?? throw CloudSoupException.Recipe("evaluation", $"merge method '{soup.Signature.Name}' needs an evaluation section");
        long need = MemoryNeeded(checkpoints);
        if (need > section.MemoryBudgetBytes)
            throw CloudSoupException.Recipe("evaluation.memory_budget",
                $"{soup.Signature.Name} holds all {checkpoints.Count} ingredients in memory ({need:N0} bytes as float32 plus one candidate) but the budget is {section.MemoryBudgetBytes:N0} bytes; raise evaluation.memory_budget or use fewer ingredients");
        return need;
    }

    /// <summary>Runs the soup's search and returns its report and the merge method that writes the chosen soup.</summary>
    /// <param name="single">Every ingredient's score alone on the held-out data, when a split job's parts measured them
    /// (docs/fanout.md): the search starts from these instead of evaluating the ingredients again.</param>
    public static async Task<(SoupReport Report, IMergeMethod Weights)> RunAsync(Recipe recipe, ISoup soup, IReadOnlyList<Checkpoint> checkpoints,
        ICheckpointStore store, EvalModelLoader models, IProgress<JobProgress>? progress, CancellationToken ct,
        IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>>? aligned = null, Func<int, string, torch.Tensor, torch.Tensor>? transform = null,
        IReadOnlyList<Metrics>? single = null)
    {
        long need = CheckMemory(recipe, soup, checkpoints);
        var section = recipe.Evaluation!;
        if (single != null && single.Count != checkpoints.Count)
            throw new InvalidOperationException($"{single.Count} ingredient scores for {checkpoints.Count} ingredients");

        progress?.Report(new JobProgress(JobPhase.Soup, 0, "loading ingredients"));
        var model = await models.LoadAsync(store, section.Model, section.Limits, "evaluation", ct).ConfigureAwait(false);
        EvalData? heldOut = null;
        var ingredients = new List<Dictionary<string, torch.Tensor>>();
        SoupSearch? search = null;
        try
        {
            heldOut = await EvalData.LoadAsync(store, section.Data, ct).ConfigureAwait(false);
            for (int ci = 0; ci < checkpoints.Count; ci++)
            {
                var raw = await JobEvaluator.ReadAllAsync(checkpoints[ci], ct).ConfigureAwait(false);
                // Soups of aligned inputs search over the permuted weights the merge will average.
                if (aligned?[ci] is { } perm)
                    foreach (var (name, t) in perm)
                        if (raw.TryGetValue(name, out var old)) { old.Dispose(); raw[name] = t.clone(); }
                // ... and after weight scope alignment, the re-scoped ones.
                if (transform != null)
                    foreach (var name in raw.Keys.ToList())
                    {
                        var t = transform(ci, name, raw[name]);
                        if (!ReferenceEquals(t, raw[name])) { raw[name].Dispose(); raw[name] = t; }
                    }
                ingredients.Add(AsFloat32(raw));
            }
            search = new SoupSearch(model, heldOut, section.BatchSize, checkpoints.Select(c => c.Reference).ToList(), ingredients, ingredients[0]);
            var report = search.Run(recipe, soup, single, progress, ct) with { BytesRead = checkpoints.Sum(c => c.TotalBytes), MemoryBytes = need, MemoryBudgetBytes = section.MemoryBudgetBytes };
            var perModel = report.Ingredients.ToDictionary(i => i.Model, i => i.Coefficient);
            return (report, new SoupWeights(soup.Signature, perModel, report.TensorCoefficients));
        }
        finally
        {
            Release(search, model, heldOut, ingredients, []);
        }
    }

    /// <summary>
    /// Frees what a search was built from: the search owns all of it once it exists (it disposes them itself);
    /// before that (a failure while loading) each piece is freed here.
    /// </summary>
    private static void Release(SoupSearch? search, IDisposable model, EvalData? heldOut, IEnumerable<Dictionary<string, torch.Tensor>> ingredients,
        IEnumerable<torch.Tensor> owned)
    {
        if (search != null) { search.Dispose(); return; }
        model.Dispose();
        heldOut?.Dispose();
        foreach (var d in ingredients) foreach (var t in d.Values) t.Dispose();
        foreach (var t in owned) t.Dispose();
    }

    /// <summary>Float tensors as float32 (what the search mixes in), the others as read; the originals are disposed.</summary>
    private static Dictionary<string, torch.Tensor> AsFloat32(Dictionary<string, torch.Tensor> raw) =>
        raw.ToDictionary(kv => kv.Key, kv =>
        {
            if (!kv.Value.is_floating_point() || kv.Value.dtype == torch.ScalarType.Float32) return kv.Value;
            var f = kv.Value.to_type(torch.ScalarType.Float32);
            kv.Value.Dispose();
            return f;
        }, StringComparer.Ordinal);

    /// <summary>
    /// A soup's part of a split job (docs/fanout.md): evaluates ingredients <paramref name="first"/> to
    /// <paramref name="first"/> + <paramref name="count"/> - 1 alone on the held-out data, exactly as the whole search
    /// does first (the same candidate buffer, filled from the one ingredient; model 0's non-float tensors), holding only
    /// those ingredients. Soups over aligned or re-scoped inputs are not split (PartPlanner), so no transform applies.
    /// </summary>
    public static async Task<IReadOnlyList<IngredientScore>> EvaluateIngredientsAsync(Recipe recipe, ISoup soup, IReadOnlyList<Checkpoint> checkpoints, int first, int count,
        ICheckpointStore store, EvalModelLoader models, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var section = recipe.Evaluation ?? throw CloudSoupException.Recipe("evaluation", $"merge method '{soup.Signature.Name}' needs an evaluation section");
        if (first < 0 || count < 1 || first + count > checkpoints.Count)
            throw new CloudSoupException(ErrorKind.IncompatibleModels,
                $"the part evaluates ingredients {first + 1}-{first + count}, but the recipe now has {checkpoints.Count} (did the recipe change while the job ran?)");
        progress?.Report(new JobProgress(JobPhase.Soup, 0, "loading ingredients"));
        var model = await models.LoadAsync(store, section.Model, section.Limits, "evaluation", ct).ConfigureAwait(false);
        EvalData? heldOut = null;
        var ingredients = Enumerable.Range(0, checkpoints.Count).Select(_ => new Dictionary<string, torch.Tensor>(StringComparer.Ordinal)).ToList();
        var owned = new List<torch.Tensor>();
        SoupSearch? search = null;
        try
        {
            heldOut = await EvalData.LoadAsync(store, section.Data, ct).ConfigureAwait(false);
            for (int i = first; i < first + count; i++)
                ingredients[i] = AsFloat32(await JobEvaluator.ReadAllAsync(checkpoints[i], ct).ConfigureAwait(false));
            // The candidate as the whole search lays it out: model 0's tensor order, its non-float tensors as they are.
            var template = ingredients[first];
            var layout = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
            foreach (var name in checkpoints[0].TensorNames)
            {
                if (!template.TryGetValue(name, out var like))
                    throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{checkpoints[first].Reference} has no tensor '{name}', which {checkpoints[0].Reference} has");
                if (first == 0 || like.is_floating_point()) layout[name] = like;
                else owned.Add(layout[name] = await checkpoints[0].ReadTensorAsync(name, ct).ConfigureAwait(false));
            }
            search = new SoupSearch(model, heldOut, section.BatchSize, checkpoints.Select(c => c.Reference).ToList(), ingredients, layout, owned);
            var scores = new List<IngredientScore>(count);
            for (int i = first; i < first + count; i++)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Report(new JobProgress(JobPhase.Soup, (double)(i - first) / count, $"ingredient {i + 1}/{checkpoints.Count}"));
                var m = search.Evaluate(search.OneHot(i));
                scores.Add(new IngredientScore(i, checkpoints[i].Reference, m.Accuracy, m.Loss, m.Examples));
            }
            return scores;
        }
        finally
        {
            Release(search, model, heldOut, ingredients, owned);
        }
    }

    private SoupReport Run(Recipe recipe, ISoup soup, IReadOnlyList<Metrics>? measured, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        int k = Models.Count;
        var single = new List<Metrics>();
        if (measured != null)
        {
            // The parts evaluated the ingredients alone; they count as evaluated candidates, as in one worker's search.
            single.AddRange(measured);
            CandidatesEvaluated += k;
        }
        else
            for (int i = 0; i < k; i++)
            {
                ct.ThrowIfCancellationRequested();
                progress?.Report(new JobProgress(JobPhase.Soup, 0.5 * i / k, $"ingredient {i + 1}/{k}"));
                single.Add(Evaluate(OneHot(i)));
            }
        // Best first; ties keep recipe order (OrderByDescending is stable).
        var order = Enumerable.Range(0, k).OrderByDescending(i => single[i].Accuracy).ToList();
        var steps = new List<SoupStep>();
        var choice = soup.Choose(this, new SoupContext(recipe, single, order, steps, progress, ct));
        var (coefficients, perTensor) = (choice.Coefficients, choice.PerTensor);
        var final = perTensor is null ? Evaluate(coefficients) : EvaluatePerTensor(perTensor);
        progress?.Report(new JobProgress(JobPhase.Soup, 1, "coefficients chosen"));
        return new SoupReport(soup.Signature.Name, choice.Rule,
            order.Select(i => new SoupIngredient(Models[i], single[i].Accuracy, single[i].Loss, coefficients[i], coefficients[i] > 1e-9)).ToList(),
            steps, final.Accuracy, final.Loss, 0, 0, 0, CandidatesEvaluated, perTensor);
    }

    internal double[] OneHot(int i) => Enumerable.Range(0, Models.Count).Select(j => j == i ? 1.0 : 0.0).ToArray();

    internal double[] Uniform(IEnumerable<int> members)
    {
        var set = members.ToHashSet();
        return Enumerable.Range(0, Models.Count).Select(j => set.Contains(j) ? 1.0 / set.Count : 0.0).ToArray();
    }

    /// <summary>Held-out metrics of Σ c_i θ_i / Σ c_i, built in the reused candidate buffer.</summary>
    internal Metrics Evaluate(double[] coefficients) => Evaluate((_, _) => coefficients);

    private Metrics EvaluatePerTensor(IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> perTensor) =>
        Evaluate((name, _) => Models.Select(m => perTensor[name][m]).ToArray());

    internal Metrics Evaluate(Func<string, int, double[]> coefficientsFor)
    {
        using (torch.no_grad())
            for (int t = 0; t < _mixed.Count; t++)
            {
                var name = _mixed[t];
                var c = coefficientsFor(name, t);
                double sum = c.Sum();
                var buffer = _candidate[name];
                buffer.zero_();
                for (int i = 0; i < c.Length; i++)
                    if (c[i] != 0) buffer.add_(Ingredients[i][name], alpha: c[i] / sum);
            }
        CandidatesEvaluated++;
        _model.LoadWeights(_candidate, "soup candidate");
        return Evaluator.Evaluate(_model, _heldOut, _batchSize);
    }

    public void Dispose()
    {
        _model.Dispose();
        _heldOut.Dispose();
        foreach (var t in _candidate.Values) t.Dispose();
        foreach (var d in Ingredients) foreach (var t in d.Values) t.Dispose();
        foreach (var t in _layoutOwned) t.Dispose();
    }
}
