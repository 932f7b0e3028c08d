// Turns a validated recipe plus the inputs' headers into independent per-tensor work (mergekit's shape:
// the recipe is resolved once into plain per-tensor settings). Shape and name mismatches, missing
// parameters and impossible values are all found here, before a single tensor byte is read.
using CloudSoup.Control.Methods;
using System.Text.RegularExpressions;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

/// <summary>The work for one output tensor.</summary>
public sealed record TensorTask(
    string Name,
    long[] Shape,
    DType OutDType,
    /// <summary>Indices (into <see cref="MergePlan.Inputs"/>) of the models that provide this tensor.</summary>
    IReadOnlyList<int> Sources,
    /// <summary>False for integer/bool buffers, which are copied from the base (or first) model, never merged.</summary>
    bool Merge,
    ResolvedParameters Global,
    IReadOnlyList<ResolvedParameters> PerModel,
    long Seed);

public sealed record MergePlan
{
    public required Recipe Recipe { get; init; }
    public required IMergeMethod Method { get; init; }
    /// <summary>The checkpoints the method reads, in recipe order (plus the base when the method uses it).</summary>
    public required IReadOnlyList<Checkpoint> Inputs { get; init; }
    public required int BaseIndex { get; init; }
    public required DType ComputeDType { get; init; }
    public required IReadOnlyList<TensorTask> Tensors { get; init; }
    public required IReadOnlyList<ShardPlan> Shards { get; init; }
    /// <summary>Checkpoints named by Reference parameters (e.g. Fishers), by reference.</summary>
    public IReadOnlyDictionary<string, Checkpoint> Auxiliary { get; init; } = new Dictionary<string, Checkpoint>();
    /// <summary>
    /// Optional in-memory replacements for input tensors (e.g. permuted by alignment), per input; an input's
    /// tensor is read from here when present, else from its checkpoint. Shapes must equal the checkpoint's.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>?>? InputOverrides { get; init; }

    /// <summary>
    /// Optional per-input rewrite applied to every tensor read (e.g. weight scope alignment's re-scoping), after
    /// any override: (input index, tensor name, tensor) → the tensor to merge. It returns a new tensor or the same one.
    /// </summary>
    public Func<int, string, torch.Tensor, torch.Tensor>? InputTransform { get; init; }

    /// <summary>Input <paramref name="input"/>'s tensor <paramref name="name"/> as the method sees it (a tensor the caller owns, in no dispose scope).</summary>
    public async Task<torch.Tensor> ReadInputAsync(int input, string name, CancellationToken ct)
    {
        var t = InputOverrides?[input] is { } o && o.TryGetValue(name, out var ov)
            ? ov.clone().DetachFromDisposeScope()
            : await Inputs[input].ReadTensorAsync(name, ct).ConfigureAwait(false);
        if (InputTransform is null) return t;
        using var scope = torch.NewDisposeScope();   // the transform's intermediates; no await inside
        var r = InputTransform(input, name, t);
        if (ReferenceEquals(r, t)) return t;
        t.Dispose();
        return r.DetachFromDisposeScope();
    }

    /// <summary>
    /// Reads tensor <paramref name="name"/> of each of <paramref name="inputs"/> in parallel into <paramref name="owned"/>
    /// (also the ones that finished when another read failed, so nothing is left for a finalizer).
    /// </summary>
    public async Task<torch.Tensor[]> ReadInputsAsync(IReadOnlyList<int> inputs, string name, OwnedTensors owned, CancellationToken ct)
    {
        var reads = inputs.Select(i => ReadInputAsync(i, name, ct)).ToArray();
        try
        {
            await Task.WhenAll(reads).ConfigureAwait(false);
        }
        finally
        {
            foreach (var r in reads)
                if (r.IsCompletedSuccessfully) owned.Add(r.Result);
        }
        return reads.Select(r => r.Result).ToArray();
    }

    /// <summary>This plan with its inputs' tensors replaced by <paramref name="overrides"/> (one entry per input, null = unchanged).</summary>
    public MergePlan WithInputOverrides(IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>?> overrides)
    {
        if (overrides.Count != Inputs.Count) throw new ArgumentException($"expected {Inputs.Count} override sets, got {overrides.Count}");
        foreach (var task in Tensors)
            foreach (int i in task.Sources)
                if (overrides[i] is { } o && o.TryGetValue(task.Name, out var t) && !t.shape.SequenceEqual(task.Shape))
                    throw new InvalidOperationException($"override for '{task.Name}' of {Inputs[i].Reference} has the wrong shape");
        return this with { InputOverrides = overrides };
    }

    /// <summary>This plan merging with <paramref name="method"/> instead (a soup's weights, a whole-model decision).</summary>
    public MergePlan WithMethod(IMergeMethod method) => this with { Method = method };

    /// <summary>
    /// False for one part of a split job (Jobs/PartPlanner.cs): it writes only its shards, and the part that finishes
    /// the job writes the index over all of them.
    /// </summary>
    public bool WritesIndex { get; init; } = true;

    /// <summary>This plan cut to <paramref name="count"/> shards from <paramref name="first"/> and their tensors (one part of a split job), without the index.</summary>
    public MergePlan ForShards(int first, int count)
    {
        var shards = Shards.Skip(first).Take(count).ToList();
        var names = shards.SelectMany(s => s.Tensors).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return this with { Shards = shards, Tensors = Tensors.Where(t => names.Contains(t.Name)).ToList(), WritesIndex = false };
    }
}

public static partial class MergePlanner
{
    /// <summary>A BatchNorm running statistic by PyTorch's naming (re-estimated rather than merged when reset_bn is on).</summary>
    public static bool IsBatchNormStatistic(string name) =>
        name.EndsWith(".running_mean", StringComparison.Ordinal) || name.EndsWith(".running_var", StringComparison.Ordinal);

    /// <summary>Models the method reads, as references, in the order the plan's inputs use.</summary>
    public static IReadOnlyList<string> MethodInputs(Recipe recipe, IMergeMethod method)
    {
        var refs = recipe.Models.Select(m => m.Model).ToList();
        if (recipe.BaseModel != null && method.BaseModel != BaseModelUse.NotUsed && !refs.Contains(recipe.BaseModel))
            refs.Add(recipe.BaseModel);
        return refs;
    }

    /// <summary>
    /// Plans every output tensor of <paramref name="inputs"/>. <paramref name="parameters"/> says where each value is looked up
    /// (default: the recipe's models and top level; sliced recipes pass SliceLayout's lookup).
    /// </summary>
    public static MergePlan Plan(Recipe recipe, IReadOnlyList<Checkpoint> inputs, IReadOnlyDictionary<string, Checkpoint>? auxiliary = null,
        IParameterLookup? parameters = null)
    {
        auxiliary ??= new Dictionary<string, Checkpoint>();
        parameters ??= new RecipeParameterLookup(recipe);
        var method = MergeMethods.For(recipe.MergeMethod);
        var refs = inputs.Select(i => i.Reference).ToList();
        int baseIndex = recipe.BaseModel is null || method.BaseModel == BaseModelUse.NotUsed ? -1 : refs.IndexOf(recipe.BaseModel);
        var names = TensorNames(recipe, inputs);
        // BatchNorm statistics to re-estimate after merging go last (MergeExecutor's deferred outputs).
        if (recipe.ResetsBatchNorm) names = names.Where(n => !IsBatchNormStatistic(n)).Concat(names.Where(IsBatchNormStatistic)).ToList();
        var layers = recipe.Slices is { } slices ? SliceLayout.Positions(slices, names) : LayerPositions(names);
        var tasks = new List<TensorTask>(names.Count);
        foreach (var name in names)
        {
            var sources = Enumerable.Range(0, inputs.Count).Where(i => inputs[i].Contains(name)).ToList();
            var first = inputs[sources[0]].Entry(name);
            foreach (int i in sources)
            {
                var e = inputs[i].Entry(name);
                if (!e.Shape.SequenceEqual(first.Shape))
                    throw new CloudSoupException(ErrorKind.IncompatibleModels,
                        $"tensor '{name}' has shape {SafetensorsHeader.Fmt(first.Shape)} in {inputs[sources[0]].Reference} but {SafetensorsHeader.Fmt(e.Shape)} in {inputs[i].Reference}");
                if (DTypes.IsFloat(e.DType) != DTypes.IsFloat(first.DType))
                    throw new CloudSoupException(ErrorKind.IncompatibleModels,
                        $"tensor '{name}' is {first.DType} in {inputs[sources[0]].Reference} but {e.DType} in {inputs[i].Reference}");
            }
            bool merge = DTypes.IsFloat(first.DType);
            var outDType = merge ? recipe.Output.DType ?? recipe.OutDType ?? recipe.DType ?? first.DType : first.DType;
            var layer = layers[name];
            var global = Resolve(method, parameters.Global(name), layer, perModel: false, optional: false).Values;
            var resolved = inputs.Select((c, i) => Resolve(method, parameters.PerModel(name, i), layer, perModel: true, optional: i == baseIndex || c.Reference == recipe.BaseModel)).ToList();
            var perModel = resolved.Select(r => r.Values).ToList();
            for (int i = 0; i < perModel.Count; i++)
                if (i != baseIndex && sources.Contains(i) && method.Signature.CheckResolved(global, perModel[i]) is var (param, why))
                    throw CloudSoupException.Recipe(resolved[i].PathOf(param), $"{why} (tensor '{name}')");
            if (merge) CheckAuxiliary(method, recipe, name, first.Shape, global, perModel, sources, auxiliary);
            tasks.Add(new TensorTask(name, first.Shape, outDType, sources, merge, global, perModel, Seeds.For(recipe.Seed, name)));
        }
        var shards = SafetensorsLayout.Plan(tasks.Select(t => new OutputTensor(t.Name, t.OutDType, t.Shape)).ToList(), recipe.Output.ShardSizeBytes,
            new Dictionary<string, string> { ["merge_method"] = method.Name, ["producer"] = "cloudsoup" });
        // Every output path is listed in the job record (RecipeLimits.MaxOutputShards says why it is bounded).
        if (shards.Count > RecipeLimits.MaxOutputShards)
            throw CloudSoupException.Recipe("output.shard_size", $"{recipe.Output.ShardSizeBytes} bytes splits this {shards.Sum(x => x.DataLength)}-byte model into {shards.Count} files; at most {RecipeLimits.MaxOutputShards} are allowed (raise shard_size)");
        return new MergePlan
        {
            Recipe = recipe, Method = method, Inputs = inputs, BaseIndex = baseIndex,
            ComputeDType = recipe.DType is DType d && d != DType.F16 && d != DType.BF16 ? d : DType.F32,
            Tensors = tasks, Shards = shards, Auxiliary = auxiliary,
        };
    }

    /// <summary>Every auxiliary tensor a merge will read must exist with the tensor's shape.</summary>
    private static void CheckAuxiliary(IMergeMethod method, Recipe recipe, string name, long[] shape, ResolvedParameters global,
        IReadOnlyList<ResolvedParameters> perModel, IReadOnlyList<int> sources, IReadOnlyDictionary<string, Checkpoint> auxiliary)
    {
        foreach (var spec in method.Parameters.Where(p => p.Kind == ParameterKind.Reference))
            foreach (var (values, path) in spec.PerModel
                ? sources.Where(i => i < recipe.Models.Count).Select(i => (perModel[i], $"models[{i}].parameters.{spec.Name}"))
                : [(global, $"parameters.{spec.Name}")])
            {
                if (!values.Values.TryGetValue(spec.Name, out var v) || v.Text is not string reference) continue;
                if (!auxiliary.TryGetValue(reference, out var ck))
                    throw CloudSoupException.Recipe(path, $"checkpoint '{reference}' was not opened");
                if (!ck.Contains(name))
                    throw CloudSoupException.Recipe(path, $"'{reference}' has no tensor '{name}'");
                if (!ck.Entry(name).Shape.SequenceEqual(shape))
                    throw CloudSoupException.Recipe(path, $"'{reference}' has tensor '{name}' with shape {SafetensorsHeader.Fmt(ck.Entry(name).Shape)}, the model has {SafetensorsHeader.Fmt(shape)}");
            }
    }

    private static List<string> TensorNames(Recipe recipe, IReadOnlyList<Checkpoint> inputs)
    {
        var order = inputs[0].TensorNames.ToList();
        var sets = inputs.Select(i => i.TensorNames.ToHashSet(StringComparer.Ordinal)).ToList();
        switch (recipe.Tensors)
        {
            case TensorSetMode.Intersection:
                var common = order.Where(n => sets.All(s => s.Contains(n))).ToList();
                if (common.Count == 0) throw new CloudSoupException(ErrorKind.IncompatibleModels, "the models share no tensor names");
                return common;
            case TensorSetMode.Union:
                var seen = new HashSet<string>(order, StringComparer.Ordinal);
                foreach (var i in inputs.Skip(1))
                    foreach (var n in i.TensorNames)
                        if (seen.Add(n)) order.Add(n);
                return order;
            default:
                for (int i = 1; i < inputs.Count; i++)
                {
                    var onlyFirst = order.Where(n => !sets[i].Contains(n)).Take(3).ToList();
                    var onlyOther = inputs[i].TensorNames.Where(n => !sets[0].Contains(n)).Take(3).ToList();
                    if (onlyFirst.Count > 0 || onlyOther.Count > 0)
                        throw new CloudSoupException(ErrorKind.IncompatibleModels,
                            $"{inputs[0].Reference} and {inputs[i].Reference} have different tensors" +
                            (onlyFirst.Count > 0 ? $"; only in the first: {string.Join(", ", onlyFirst)}" : "") +
                            (onlyOther.Count > 0 ? $"; only in the second: {string.Join(", ", onlyOther)}" : "") +
                            " (set `tensors: union` or `tensors: intersection` to merge anyway)");
                }
                return order;
        }
    }

    [GeneratedRegex(@"^(?<prefix>(?:.*?\.)?)(?<idx>\d+)\.")]
    private static partial Regex LayerIndex();

    /// <summary>
    /// Layer positions for gradients: a tensor named "prefix.N.rest" is layer N of the stack "prefix";
    /// the stack's size is the number of distinct N seen. Tensors outside any stack get t = 0, as mergekit
    /// resolves embeddings and heads.
    /// </summary>
    public static Dictionary<string, LayerPosition> LayerPositions(IReadOnlyList<string> names)
    {
        var parsed = names.ToDictionary(n => n, n =>
        {
            var m = LayerIndex().Match(n);
            return m.Success && int.TryParse(m.Groups["idx"].Value, out int i) ? (m.Groups["prefix"].Value, (int?)i) : ("", null);
        });
        var counts = parsed.Values.Where(v => v.Item2 != null).GroupBy(v => v.Item1).ToDictionary(g => g.Key, g => g.Select(v => v.Item2!.Value).Distinct().Count());
        return parsed.ToDictionary(kv => kv.Key, kv => kv.Value.Item2 is int i ? new LayerPosition(i, counts[kv.Value.Item1]) : LayerPosition.None);
    }

    /// <summary>Resolved values plus the recipe path each came from (for errors that blame the right block).</summary>
    private sealed record Resolution(ResolvedParameters Values, IReadOnlyDictionary<string, string> Paths, string DefaultPath)
    {
        public string PathOf(string parameter) => Paths.TryGetValue(parameter, out var p) ? p : $"{DefaultPath}.{parameter}";
    }

    /// <summary>
    /// One tensor's values of the method's global (or per-model) parameters: the first block in <paramref name="levels"/>
    /// whose setting yields a value for the tensor (filters see <see cref="ParameterLevels.MatchName"/>), else the default.
    /// A required value may be missing only when <paramref name="optional"/> (the base model).
    /// </summary>
    private static Resolution Resolve(IMergeMethod method, ParameterLevels levels, LayerPosition layer, bool perModel, bool optional)
    {
        var values = new Dictionary<string, ParameterValue>();
        var paths = new Dictionary<string, string>();
        foreach (var spec in method.Parameters.Where(p => p.PerModel == perModel))
        {
            ParameterValue? v = null;
            string? path = null;
            foreach (var level in levels.Levels)
            {
                if (!level.Settings.TryGetValue(spec.Name, out var setting)) continue;
                path ??= $"{level.Path}.{spec.Name}";
                if (setting.Evaluate(levels.MatchName, layer) is { } found)
                {
                    v = found;
                    path = $"{level.Path}.{spec.Name}";
                    break;
                }
            }
            path ??= $"{levels.Levels[0].Path}.{spec.Name}";
            if (v is null && spec.Default != null)
                v = spec.Default switch { bool b => ParameterValue.Of(b), double d => ParameterValue.Of(d), int i => ParameterValue.Of(i), _ => ParameterValue.Of(spec.Default.ToString()!) };
            if (v is null)
            {
                if (spec.Required && !optional)
                    throw CloudSoupException.Recipe(path, $"no value applies to tensor '{levels.MatchName}' (add a catch-all {{value: ...}} entry)");
                continue;
            }
            if (spec.Check(v.Value) is string why) throw CloudSoupException.Recipe(path, $"{why} (got {v.Value} for tensor '{levels.MatchName}')");
            values[spec.Name] = v.Value;
            paths[spec.Name] = path;
        }
        return new Resolution(new ResolvedParameters(values), paths, levels.Levels[0].Path);
    }
}
