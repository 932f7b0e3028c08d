// Parses a recipe (YAML or JSON; JSON is YAML) into a validated Recipe. Every problem is reported with
// the path of the field at fault ("models[2].parameters.weight") before any download starts. What a recipe may be
// (size, nesting, nodes, list lengths) is bounded by RecipeLimits: the shape while BoundedYaml reads the text, the
// counts here before each list is walked.
using System.Globalization;
using System.Text;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Methods;
using CloudSoup.Control.Tensors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace CloudSoup.Control.Recipes;

public static partial class RecipeParser
{
    public const long DefaultShardSize = 5_000_000_000;

    private static readonly HashSet<string> TopLevelKeys =
    [
        "merge_method", "base_model", "models", "parameters", "dtype", "out_dtype", "name", "seed", "tensors",
        "alignment", "scope_alignment", "evaluation", "output", "tokenizer_source", "tokenizer", "chat_template",
        "slices", "modules", "fisher", "nonfinite", "parallelism",
    ];

    // The keys each section accepts, in the order the errors list them.
    private static readonly string[] ModelKeys = ["model", "parameters"];
    private static readonly string[] SliceKeys = ["sources", "base_model", "parameters", "residual_weight"];
    private static readonly string[] SliceSourceKeys = ["model", "layer_range", "parameters"];
    private static readonly string[] FilterEntryKeys = ["filter", "value"];
    private static readonly string[] FisherKeys = ["model", "data", "labels", "samples", "seed", "limits"];
    private static readonly string[] LimitsKeys = ["memory", "seconds"];
    private static readonly string[] OutputKeys = ["shard_size", "dtype"];
    private static readonly string[] ParallelismKeys = ["parts"];
    private static readonly string[] EvaluationKeys = ["model", "data", "test", "batch_size", "memory_budget", "reset_bn", "reset_bn_examples", "limits"];
    private static readonly string[] AlignmentKeys = ["method", "spec", "reference", "max_iter", "seed", "path_points", "reset_bn"];
    private static readonly string[] ScopeAlignmentKeys = ["enabled", "fusion", "weights", "layers", "eps"];

    public static Recipe Parse(string text)
    {
        // Every char is at least one UTF-8 byte, so the length check first avoids counting a huge string.
        if (text.Length > RecipeLimits.MaxBytes || Encoding.UTF8.GetByteCount(text) > RecipeLimits.MaxBytes) throw TooLarge();
        var root = BoundedYaml.Load(text);
        if (root is null) throw CloudSoupException.Recipe("recipe", "is empty");
        if (root is not YamlMappingNode map)
            throw CloudSoupException.Recipe("recipe", "must be a mapping with at least merge_method and models");
        var fields = Fields(map, "recipe");
        foreach (var key in fields.Keys)
            if (!TopLevelKeys.Contains(key))
                throw CloudSoupException.Recipe(key, $"unknown key (known keys: {string.Join(", ", TopLevelKeys.Order())})");
        var warnings = new List<string>();
        if (fields.ContainsKey("modules")) throw CloudSoupException.Recipe("modules", "multi-module recipes are not supported yet; list whole models under 'models'");

        string methodName = RequiredString(fields, "merge_method", "merge_method");
        var method = MethodCatalog.Get(methodName);

        string? baseModel = fields.TryGetValue("base_model", out var bm) ? ModelRef(bm, "base_model") : null;
        List<RecipeModel> models;
        IReadOnlyList<RecipeSlice>? slices = null;
        if (fields.TryGetValue("slices", out var slicesNode))
        {
            if (fields.ContainsKey("models")) throw CloudSoupException.Recipe("slices", "give either models or slices, not both");
            (slices, models) = ParseSlices(slicesNode, method, baseModel, warnings);
        }
        else
        {
            models = ParseModels(fields, method, warnings);
        }
        var dupes = models.GroupBy(m => m.Model).FirstOrDefault(g => g.Count() > 1);
        if (dupes != null) throw CloudSoupException.Recipe("models", $"'{dupes.Key}' is listed more than once");

        var global = fields.TryGetValue("parameters", out var gp) ? ParameterBlock(gp, "parameters", method, ParameterLevel.Global, warnings) : new Dictionary<string, ParameterSetting>();

        var recipe = new Recipe
        {
            MergeMethod = method.Name,
            BaseModel = baseModel,
            Models = models,
            Slices = slices,
            Parameters = global,
            DType = fields.TryGetValue("dtype", out var dt) ? ParseDType(dt, "dtype") : null,
            OutDType = fields.TryGetValue("out_dtype", out var odt) ? ParseDType(odt, "out_dtype") : null,
            Name = fields.TryGetValue("name", out var nm) ? Scalar(nm, "name") : null,
            Seed = fields.TryGetValue("seed", out var sd) ? ParseLong(sd, "seed") : 0,
            Tensors = fields.TryGetValue("tensors", out var ts) ? ParseEnum<TensorSetMode>(ts, "tensors") : TensorSetMode.Strict,
            Alignment = null,
            Evaluation = fields.TryGetValue("evaluation", out var ev) ? ParseEvaluation(ev) : null,
            Fisher = fields.TryGetValue("fisher", out var fs) ? ParseFisher(fs, method) : null,
            ScopeAlignment = fields.TryGetValue("scope_alignment", out var sa) ? ParseScopeAlignment(sa, models.Count) : null,
            Output = fields.TryGetValue("output", out var o) ? ParseOutput(o) : new OutputSection(DefaultShardSize, null),
            NonFinite = fields.TryGetValue("nonfinite", out var nf) ? ParseEnum<NonFinitePolicy>(nf, "nonfinite") : NonFinitePolicy.Warn,
            Parallelism = fields.TryGetValue("parallelism", out var pl) ? ParseParallelism(pl) : null,
            Warnings = warnings,
            TokenizerSource = ParseTokenizerSource(fields),
            ChatTemplate = fields.TryGetValue("chat_template", out var chat) ? ParseChatTemplate(chat) : null,
        };
        ValidateAgainstMethod(recipe, method);
        if (fields.TryGetValue("alignment", out var al) && ParseAlignment(al, recipe) is { } alignment)
            recipe = recipe.WithAlignment(alignment);
        return recipe;
    }

    /// <summary>The one message for a recipe over <see cref="RecipeLimits.MaxBytes"/>, whichever entry point read it.</summary>
    public static CloudSoupException TooLarge() => CloudSoupException.Recipe("recipe", $"is larger than {RecipeLimits.MaxBytes} bytes");

    private static List<RecipeModel> ParseModels(Dictionary<string, YamlNode> fields, MethodSignature method, List<string> warnings)
    {
        if (!fields.TryGetValue("models", out var modelsNode) || modelsNode is not YamlSequenceNode modelSeq || modelSeq.Children.Count == 0)
            throw CloudSoupException.Recipe("models", "must be a non-empty list of {model, parameters}");
        if (modelSeq.Children.Count > RecipeLimits.MaxModels)
            throw CloudSoupException.Recipe("models", $"lists {modelSeq.Children.Count} models; a recipe merges at most {RecipeLimits.MaxModels}");
        var models = new List<RecipeModel>();
        for (int i = 0; i < modelSeq.Children.Count; i++)
        {
            string path = $"models[{i}]";
            var node = modelSeq.Children[i];
            if (node is YamlScalarNode)
            {
                models.Add(new RecipeModel(ModelRef(node, path), new Dictionary<string, ParameterSetting>()));
                continue;
            }
            if (node is not YamlMappingNode mm) throw CloudSoupException.Recipe(path, "must be {model: REF, parameters: {...}}");
            var mf = Fields(mm, path, ModelKeys);
            if (!mf.TryGetValue("model", out var mref)) throw CloudSoupException.Recipe($"{path}.model", "is required");
            models.Add(new RecipeModel(ModelRef(mref, $"{path}.model"),
                mf.TryGetValue("parameters", out var mp) ? ParameterBlock(mp, $"{path}.parameters", method, ParameterLevel.Model, warnings) : new Dictionary<string, ParameterSetting>()));
        }
        return models;
    }

    /// <summary>
    /// mergekit's <c>slices</c>: [{sources: [{model, layer_range: [a, b], parameters}], parameters}]. Returns the slices
    /// (each source and slice keeping its own parameters: mergekit resolves them per slice) and the distinct models in
    /// order of first appearance, without parameters.
    /// </summary>
    private static (IReadOnlyList<RecipeSlice>, List<RecipeModel>) ParseSlices(YamlNode node, MethodSignature method, string? baseModel, List<string> warnings)
    {
        if (node is not YamlSequenceNode seq || seq.Children.Count == 0)
            throw CloudSoupException.Recipe("slices", "must be a non-empty list of {sources: [{model, layer_range: [a, b]}]}");
        if (method.Parameters.Any(p => p.Kind == ParameterKind.Reference))
            throw CloudSoupException.Recipe("slices", $"merge method '{method.Name}' reads per-tensor checkpoints (e.g. Fishers) by tensor name, which slices renumber; list whole models instead");
        if (seq.Children.Count > RecipeLimits.MaxSlices)
            throw CloudSoupException.Recipe("slices", $"lists {seq.Children.Count} slices; at most {RecipeLimits.MaxSlices} are allowed");
        var slices = new List<RecipeSlice>();
        var models = new List<RecipeModel>();
        for (int i = 0; i < seq.Children.Count; i++)
        {
            string path = $"slices[{i}]";
            if (seq.Children[i] is not YamlMappingNode sm) throw CloudSoupException.Recipe(path, "must be {sources: [...]}");
            var sf = Fields(sm, path, SliceKeys);
            var sliceParameters = sf.TryGetValue("parameters", out var spn)
                ? ParameterBlock(spn, $"{path}.parameters", method, ParameterLevel.Slice, warnings)
                : new Dictionary<string, ParameterSetting>();
            if (sf.TryGetValue("base_model", out var sb) && ModelRef(sb, $"{path}.base_model") != baseModel)
                throw CloudSoupException.Recipe($"{path}.base_model", "a per-slice base_model different from the top-level base_model is not supported");
            if (sf.ContainsKey("residual_weight")) warnings.Add($"{path}.residual_weight is ignored (mergekit parses it but never uses it)");
            if (!sf.TryGetValue("sources", out var srcNode) || srcNode is not YamlSequenceNode srcSeq || srcSeq.Children.Count == 0)
                throw CloudSoupException.Recipe($"{path}.sources", "must be a non-empty list of {model, layer_range: [a, b]}");
            if (srcSeq.Children.Count > RecipeLimits.MaxSliceSources)
                throw CloudSoupException.Recipe($"{path}.sources", $"lists {srcSeq.Children.Count} sources; a slice has at most {RecipeLimits.MaxSliceSources}");
            var sources = new List<SliceSource>();
            for (int j = 0; j < srcSeq.Children.Count; j++)
            {
                string sp = $"{path}.sources[{j}]";
                if (srcSeq.Children[j] is not YamlMappingNode srcMap) throw CloudSoupException.Recipe(sp, "must be {model, layer_range: [a, b]}");
                var f = Fields(srcMap, sp, SliceSourceKeys);
                if (!f.TryGetValue("model", out var mref)) throw CloudSoupException.Recipe($"{sp}.model", "is required");
                string model = ModelRef(mref, $"{sp}.model");
                if (!f.TryGetValue("layer_range", out var lr) || lr is not YamlSequenceNode { Children.Count: 2 } range)
                    throw CloudSoupException.Recipe($"{sp}.layer_range", "must be [start, end] (end exclusive)");
                int start = ParseNonNegativeInt(range.Children[0], $"{sp}.layer_range[0]"), end = ParseNonNegativeInt(range.Children[1], $"{sp}.layer_range[1]");
                if (end <= start) throw CloudSoupException.Recipe($"{sp}.layer_range", $"[{start}, {end}] is empty (the end is exclusive)");
                if (sources.Count > 0 && end - start != sources[0].End - sources[0].Start)
                    throw CloudSoupException.Recipe($"{sp}.layer_range", $"spans {end - start} layers but {path}.sources[0] spans {sources[0].End - sources[0].Start}; every source of a slice must span the same number of layers");
                if (sources.Any(x => x.Model == model)) throw CloudSoupException.Recipe($"{sp}.model", $"'{model}' is listed twice in this slice");
                var parameters = f.TryGetValue("parameters", out var pn)
                    ? ParameterBlock(pn, $"{sp}.parameters", method, ParameterLevel.Model, warnings)
                    : new Dictionary<string, ParameterSetting>();
                sources.Add(new SliceSource(model, start, end, parameters));
                if (!models.Any(m => m.Model == model))
                {
                    if (models.Count == RecipeLimits.MaxModels)
                        throw CloudSoupException.Recipe($"{sp}.model", $"adds a distinct model beyond the {RecipeLimits.MaxModels} a recipe merges at most");
                    models.Add(new RecipeModel(model, new Dictionary<string, ParameterSetting>()));
                }
            }
            slices.Add(new RecipeSlice(sources, sliceParameters));
        }
        if (method.Name != "passthrough")
        {
            // Every slice must merge the same models, so each model's layers form one virtual model.
            var set = slices[0].Sources.Select(x => x.Model).ToHashSet(StringComparer.Ordinal);
            for (int i = 1; i < slices.Count; i++)
                if (!slices[i].Sources.Select(x => x.Model).ToHashSet(StringComparer.Ordinal).SetEquals(set))
                    throw CloudSoupException.Recipe($"slices[{i}].sources", $"lists other models than slices[0]; with merge_method {method.Name} every slice must merge the same models");
            if (baseModel != null && method.BaseModel != BaseModelUse.NotUsed && !set.Contains(baseModel))
                throw CloudSoupException.Recipe("base_model", "with slices the base model must be one of each slice's sources (its layer range says which layers to use)");
        }
        else
        {
            for (int i = 0; i < slices.Count; i++)
                if (slices[i].Sources.Count != 1)
                    throw CloudSoupException.Recipe($"slices[{i}].sources", $"passthrough takes exactly 1 source per slice, this slice has {slices[i].Sources.Count}");
        }
        return (slices, models);
    }

    private static FisherSection ParseFisher(YamlNode node, MethodSignature method)
    {
        if (method.Name is not ("fisher" or "gradient_matching"))
            throw CloudSoupException.Recipe("fisher", $"computes Fishers for merge_method fisher or gradient_matching, not {method.Name}");
        if (node is not YamlMappingNode map) throw CloudSoupException.Recipe("fisher", "must be a mapping like {model: builtin:mlp, data: DATA}");
        var f = Fields(map, "fisher", FisherKeys);
        return new FisherSection(
            ModelArchitecture(RequiredString(f, "model", "fisher.model"), "fisher.model"),
            RequiredString(f, "data", "fisher.data"),
            f.TryGetValue("labels", out var l) ? ParseFisherLabels(Scalar(l, "fisher.labels"), "fisher.labels") : FisherLabels.Sampled,
            f.TryGetValue("samples", out var n) ? ParsePositiveInt(n, "fisher.samples") : 1000,
            f.TryGetValue("seed", out var sd) ? ParseLong(sd, "fisher.seed") : 0)
        {
            Limits = f.TryGetValue("limits", out var lim) ? ParseLimits(lim, "fisher.limits") : null,
        };
    }

    /// <summary>limits: {memory: SIZE, seconds: N} for a sandboxed TorchScript model (docs/sandbox.md).</summary>
    private static EvaluationLimits ParseLimits(YamlNode node, string path)
    {
        if (node is not YamlMappingNode map) throw CloudSoupException.Recipe(path, "must be a mapping like {memory: 4GB, seconds: 600}");
        var f = Fields(map, path, LimitsKeys);
        long? memory = null;
        if (f.TryGetValue("memory", out var m))
        {
            var text = Scalar(m, $"{path}.memory");
            if (!ByteSize.TryParse(text, out long bytes) || bytes < EvaluationLimits.MinMemoryBytes)
                throw CloudSoupException.Recipe($"{path}.memory", $"must be a size of at least 256MB (e.g. 4GB, 512MB)");
            memory = bytes;
        }
        return new EvaluationLimits(memory, f.TryGetValue("seconds", out var sec) ? ParsePositiveInt(sec, $"{path}.seconds") : null);
    }

    public static FisherLabels ParseFisherLabels(string text, string field) => text.ToLowerInvariant() switch
    {
        "sampled" => FisherLabels.Sampled,
        "exact" => FisherLabels.Exact,
        "empirical" => FisherLabels.Empirical,
        "argmax" => FisherLabels.Argmax,
        _ => throw CloudSoupException.Recipe(field, $"unknown label source '{text}' (expected sampled, exact, empirical or argmax)"),
    };

    /// <summary>A built-in architecture must be one CloudSoup has; anything else is a TorchScript model reference.</summary>
    private static string ModelArchitecture(string reference, string path) =>
        !reference.StartsWith("builtin:", StringComparison.Ordinal) || EvaluationSection.BuiltinArchitectures.Contains(reference) ? reference
            : throw CloudSoupException.Recipe(path, $"unknown built-in architecture '{reference}' (available: {string.Join(", ", EvaluationSection.BuiltinArchitectures)}, or a TorchScript .pt file)");

    private static bool ParseBool(YamlNode node, string path) => Scalar(node, path) switch
    {
        "true" or "True" => true,
        "false" or "False" => false,
        var v => throw CloudSoupException.Recipe(path, $"must be true or false (got '{v}')"),
    };

    private static double ParseDouble(YamlNode node, string path) =>
        double.TryParse(Scalar(node, path), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v : throw CloudSoupException.Recipe(path, "must be a number");

    private static int ParseNonNegativeInt(YamlNode node, string path) =>
        int.TryParse(Scalar(node, path), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 0 ? v : throw CloudSoupException.Recipe(path, "must be a non-negative integer");

    private static void ValidateAgainstMethod(Recipe recipe, MethodSignature method)
    {
        // Soups choose their weights by held-out accuracy, so they cannot run without evaluation data.
        if (method.NeedsEvaluation && recipe.Evaluation is null)
            throw CloudSoupException.Recipe("evaluation", $"merge method '{method.Name}' needs an evaluation section (model and held-out data) to choose its ingredients");
        if (method.BaseModel == BaseModelUse.Required && recipe.BaseModel is null)
            throw CloudSoupException.Recipe("base_model", $"merge method '{method.Name}' needs a base_model");
        int inputs = recipe.InputModels.Count;
        if (inputs < method.MinModels)
            throw CloudSoupException.Recipe("models", $"merge method '{method.Name}' needs at least {method.MinModels} models, the recipe has {inputs}");
        // A required per-model parameter must be set for each model (or globally); the base may omit it.
        // With a fisher section, a model without a `fisher` parameter gets its Fisher computed in the job.
        foreach (var spec in method.Parameters.Where(p => p.Required && p.Default is null && !(p.Kind == ParameterKind.Reference && recipe.Fisher != null)))
        {
            if (recipe.Slices is { } slices)
            {
                // mergekit: a slice source's own parameters, then its slice's, then the top level's.
                for (int s = 0; s < slices.Count; s++)
                {
                    if (slices[s].Parameters.ContainsKey(spec.Name) || recipe.Parameters.ContainsKey(spec.Name)) continue;
                    if (!spec.PerModel)
                        throw CloudSoupException.Recipe($"parameters.{spec.Name}", $"is required by merge method '{method.Name}' (at the top level or on every slice)");
                    for (int j = 0; j < slices[s].Sources.Count; j++)
                        if (slices[s].Sources[j].Model != recipe.BaseModel && !slices[s].Sources[j].Parameters.ContainsKey(spec.Name))
                            throw CloudSoupException.Recipe($"slices[{s}].sources[{j}].parameters.{spec.Name}", $"is required by merge method '{method.Name}'");
                }
                continue;
            }
            if (!spec.PerModel)
            {
                if (!recipe.Parameters.ContainsKey(spec.Name))
                    throw CloudSoupException.Recipe($"parameters.{spec.Name}", $"is required by merge method '{method.Name}'");
                continue;
            }
            for (int i = 0; i < recipe.Models.Count; i++)
            {
                var m = recipe.Models[i];
                if (m.Model == recipe.BaseModel) continue;
                if (!m.Parameters.ContainsKey(spec.Name) && !recipe.Parameters.ContainsKey(spec.Name))
                    throw CloudSoupException.Recipe($"models[{i}].parameters.{spec.Name}", $"is required by merge method '{method.Name}'");
            }
        }
        method.ValidateRecipe(recipe);
    }

    /// <summary>Where a parameter block sits: a model's (or slice source's) own, a slice's, or the top level.</summary>
    private enum ParameterLevel { Model, Slice, Global }

    /// <summary>
    /// A <c>parameters</c> mapping. As in mergekit (mergekit/plan.py asks a method only for the parameters it declares),
    /// a parameter the method does not use is ignored, with a warning: one that a mergekit method takes
    /// (<see cref="MethodCatalog.MergekitParameterNames"/>), or a method-wide parameter given on a model (mergekit reads
    /// those only from the slice and top-level blocks). Any other name is refused as a likely typo or a CloudSoup
    /// parameter given to the wrong method.
    /// </summary>
    private static Dictionary<string, ParameterSetting> ParameterBlock(YamlNode node, string path, MethodSignature method, ParameterLevel level, List<string> warnings)
    {
        if (node is not YamlMappingNode map) throw CloudSoupException.Recipe(path, "must be a mapping of parameter names to values");
        var result = new Dictionary<string, ParameterSetting>();
        foreach (var (name, value) in Fields(map, path))
        {
            string p = $"{path}.{name}";
            var spec = method.Parameters.FirstOrDefault(s => s.Name == name);
            if (spec is null)
            {
                if (!MethodCatalog.MergekitParameterNames.Contains(name))
                    throw CloudSoupException.Recipe(p, $"unknown parameter for merge method '{method.Name}' (known: {(method.Parameters.Count == 0 ? "none" : string.Join(", ", method.Parameters.Select(s => s.Name)))})");
                Setting(value, p);   // still well-formed, so the recipe round-trips
                warnings.Add($"{p} is ignored: merge method '{method.Name}' does not use '{name}' (mergekit ignores it too)");
                continue;
            }
            if (level == ParameterLevel.Model && !spec.PerModel)
            {
                Setting(value, p);
                warnings.Add($"{p} is ignored: '{name}' is a method-wide parameter of '{method.Name}', read only from the top-level (or slice) parameters, as in mergekit");
                continue;
            }
            var setting = Setting(value, p);
            CheckSetting(setting, spec, p);
            result[name] = setting;
        }
        return result;
    }

    /// <summary>Checks every value a setting can produce against the parameter's type and range.</summary>
    private static void CheckSetting(ParameterSetting setting, ParameterSpec spec, string path)
    {
        IEnumerable<ParameterValue> values = setting switch
        {
            ScalarSetting s => [s.Value],
            GradientSetting g => g.Points.Select(ParameterValue.Of),
            StepSetting st => st.Steps,
            FilterSetting f => [],
            _ => [],
        };
        foreach (var v in values)
            if (spec.Check(v) is string why) throw CloudSoupException.Recipe(path, $"{why} (got {v})");
        if (setting is FilterSetting fs)
            for (int i = 0; i < fs.Entries.Count; i++)
                CheckSetting(fs.Entries[i].Value, spec, $"{path}[{i}].value");
    }

    private static ParameterSetting Setting(YamlNode node, string path)
    {
        switch (node)
        {
            case YamlScalarNode s:
                return new ScalarSetting(Value(s, path));
            case YamlSequenceNode seq when seq.Children.Count == 0:
                throw CloudSoupException.Recipe(path, "must not be an empty list");
            case YamlSequenceNode seq when seq.Children.Count > RecipeLimits.MaxParameterListEntries:
                throw CloudSoupException.Recipe(path, $"lists {seq.Children.Count} entries; a parameter list has at most {RecipeLimits.MaxParameterListEntries}");
            case YamlSequenceNode seq when seq.Children.All(c => c is YamlMappingNode):
                var entries = new List<(string?, ParameterSetting)>();
                for (int i = 0; i < seq.Children.Count; i++)
                {
                    var f = Fields((YamlMappingNode)seq.Children[i], $"{path}[{i}]", FilterEntryKeys);
                    if (!f.TryGetValue("value", out var v)) throw CloudSoupException.Recipe($"{path}[{i}].value", "is required");
                    if (v is YamlMappingNode) throw CloudSoupException.Recipe($"{path}[{i}].value", "must be a scalar or a list of numbers");
                    entries.Add((f.TryGetValue("filter", out var flt) ? Scalar(flt, $"{path}[{i}].filter") : null, Setting(v, $"{path}[{i}].value")));
                }
                return new FilterSetting(entries);
            case YamlSequenceNode seq when seq.Children.All(c => c is YamlScalarNode):
                var values = seq.Children.Select((c, i) => Value((YamlScalarNode)c, $"{path}[{i}]")).ToList();
                return values.All(v => v.Number.HasValue)
                    ? new GradientSetting(values.Select(v => v.Number!.Value).ToList())
                    : new StepSetting(values);
            default:
                throw CloudSoupException.Recipe(path, "must be a scalar, a list of numbers (gradient) or a list of {filter, value}");
        }
    }

    private static ParameterValue Value(YamlScalarNode s, string path)
    {
        string v = s.Value ?? "";
        bool quoted = s.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted;
        if (!quoted)
        {
            if (v is "true" or "True" or "TRUE") return ParameterValue.Of(true);
            if (v is "false" or "False" or "FALSE") return ParameterValue.Of(false);
            if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return ParameterValue.Of(d);
            if (v is "" or "~" or "null") throw CloudSoupException.Recipe(path, "must not be empty");
        }
        return ParameterValue.Of(v);
    }

    /// <summary>The mapping's fields by name; with <paramref name="allowed"/>, any other key is refused naming the allowed ones.</summary>
    private static Dictionary<string, YamlNode> Fields(YamlMappingNode map, string path, IReadOnlyList<string>? allowed = null)
    {
        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            if (k is not YamlScalarNode ks || string.IsNullOrEmpty(ks.Value)) throw CloudSoupException.Recipe(path, "has a key that is not a plain name");
            if (!result.TryAdd(ks.Value, v)) throw CloudSoupException.Recipe($"{path}.{ks.Value}", "is given twice");
        }
        if (allowed != null)
            foreach (var key in result.Keys)
                if (!allowed.Contains(key)) throw CloudSoupException.Recipe($"{path}.{key}", $"unknown key (expected {string.Join(", ", allowed)})");
        return result;
    }

    private static string Scalar(YamlNode node, string path) =>
        node is YamlScalarNode { Value: { Length: > 0 } v } ? v : throw CloudSoupException.Recipe(path, "must be a non-empty string");

    private static string RequiredString(Dictionary<string, YamlNode> f, string key, string path) =>
        f.TryGetValue(key, out var n) ? Scalar(n, path) : throw CloudSoupException.Recipe(path, "is required");

    private static string ModelRef(YamlNode node, string path)
    {
        string r = Scalar(node, path).Trim();
        if (r.Length > RecipeLimits.MaxReferenceChars) throw CloudSoupException.Recipe(path, $"is {r.Length} characters long; a reference has at most {RecipeLimits.MaxReferenceChars}");
        if (r.Any(char.IsControl)) throw CloudSoupException.Recipe(path, "is not a valid model reference (it holds control characters)");
        if (r.Contains('+') && !File.Exists(r)) throw CloudSoupException.Recipe(path, $"'{r}': LoRA references (model+lora) are not supported");
        return r;
    }

    private static DType ParseDType(YamlNode node, string path)
    {
        var s = Scalar(node, path);
        return DTypes.TryParseRecipe(s, out var d) ? d : throw CloudSoupException.Recipe(path, $"unsupported dtype '{s}' (use float32, float16, bfloat16 or float64)");
    }

    private static long ParseLong(YamlNode node, string path) =>
        long.TryParse(Scalar(node, path), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : throw CloudSoupException.Recipe(path, "must be an integer");

    private static int ParsePositiveInt(YamlNode node, string path) =>
        int.TryParse(Scalar(node, path), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw CloudSoupException.Recipe(path, "must be a positive integer");

    private static T ParseEnum<T>(YamlNode node, string path) where T : struct, Enum
    {
        var s = Scalar(node, path);
        return Enum.TryParse<T>(s, ignoreCase: true, out var v) && Enum.IsDefined(v) ? v
            : throw CloudSoupException.Recipe(path, $"must be one of {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");
    }

    private static OutputSection ParseOutput(YamlNode node)
    {
        if (node is not YamlMappingNode map) throw CloudSoupException.Recipe("output", "must be a mapping");
        var f = Fields(map, "output", OutputKeys);
        long shard = DefaultShardSize;
        DType? dtype = null;
        foreach (var (k, v) in f)
        {
            switch (k)
            {
                case "shard_size":
                    var s = Scalar(v, "output.shard_size");
                    if (!ByteSize.TryParse(s, out shard)) throw CloudSoupException.Recipe("output.shard_size", $"'{s}' is not a size in bytes (e.g. 5GB, 500MB, 1048576)");
                    break;
                case "dtype": dtype = ParseDType(v, "output.dtype"); break;
                default: throw new InvalidOperationException($"output.{k} passed the key check");
            }
        }
        return new OutputSection(shard, dtype);
    }

    /// <summary><c>parallelism: {parts: K}</c> (1..RecipeLimits.MaxParts) or <c>{parts: auto}</c>; <c>parallelism: auto</c> and <c>parallelism: K</c> are short for them.</summary>
    private static ParallelismSection ParseParallelism(YamlNode node)
    {
        string expected = $"must be {{parts: N}} with N from 1 to {RecipeLimits.MaxParts}, or {{parts: auto}}";
        YamlNode parts;
        string path;
        if (node is YamlScalarNode)
        {
            parts = node;
            path = "parallelism";
        }
        else if (node is YamlMappingNode map)
        {
            var f = Fields(map, "parallelism", ParallelismKeys);
            if (!f.TryGetValue("parts", out parts!)) throw CloudSoupException.Recipe("parallelism.parts", $"is missing; parallelism {expected}");
            path = "parallelism.parts";
        }
        else throw CloudSoupException.Recipe("parallelism", expected);
        if (parts is not YamlScalarNode) throw CloudSoupException.Recipe(path, $"must be a number from 1 to {RecipeLimits.MaxParts} or auto");
        string text = Scalar(parts, path);
        if (text == "auto") return new ParallelismSection(null);
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k))
            throw CloudSoupException.Recipe(path, $"must be a number from 1 to {RecipeLimits.MaxParts} or auto (got '{SafeText.Line(text, 40)}')");
        if (k < 1 || k > RecipeLimits.MaxParts)
            throw CloudSoupException.Recipe(path, $"is {k}; a job is split into 1 to {RecipeLimits.MaxParts} parts");
        return new ParallelismSection(k);
    }

    private static EvaluationSection ParseEvaluation(YamlNode node)
    {
        if (node is not YamlMappingNode map) throw CloudSoupException.Recipe("evaluation", "must be a mapping with model and data");
        var f = Fields(map, "evaluation", EvaluationKeys);
        long budget = EvaluationSection.DefaultMemoryBudget;
        if (f.TryGetValue("memory_budget", out var mb) && !ByteSize.TryParse(Scalar(mb, "evaluation.memory_budget"), out budget))
            throw CloudSoupException.Recipe("evaluation.memory_budget", $"'{Scalar(mb, "evaluation.memory_budget")}' is not a size in bytes (e.g. 8GB, 500MB)");
        return new EvaluationSection(
            ModelArchitecture(RequiredString(f, "model", "evaluation.model"), "evaluation.model"),
            RequiredString(f, "data", "evaluation.data"),
            f.TryGetValue("test", out var t) ? Scalar(t, "evaluation.test") : null,
            f.TryGetValue("batch_size", out var b) ? ParsePositiveInt(b, "evaluation.batch_size") : 256)
        {
            MemoryBudgetBytes = budget,
            ResetBn = !f.TryGetValue("reset_bn", out var rb) || ParseBool(rb, "evaluation.reset_bn"),
            ResetBnExamples = f.TryGetValue("reset_bn_examples", out var rbe) ? ParsePositiveInt(rbe, "evaluation.reset_bn_examples") : 2048,
            Limits = f.TryGetValue("limits", out var lim) ? ParseLimits(lim, "evaluation.limits") : null,
        };
    }

    private static AlignmentSection? ParseAlignment(YamlNode node, Recipe recipe)
    {
        if (node is not YamlMappingNode map) throw CloudSoupException.Recipe("alignment", "must be a mapping");
        var f = Fields(map, "alignment", AlignmentKeys);
        string method = f.TryGetValue("method", out var m) ? Scalar(m, "alignment.method") : "none";
        if (method == "none") return null;
        if (method is not (AlignmentSection.WeightMatching or AlignmentSection.ActivationMatching))
            throw CloudSoupException.Recipe("alignment.method", $"unknown alignment method '{method}' (expected weight_matching, activation_matching or none)");
        string spec = f.TryGetValue("spec", out var sp) ? Scalar(sp, "alignment.spec") : "auto";
        if (spec.Length == 0) throw CloudSoupException.Recipe("alignment.spec", "must be auto, mlp, vgg, resnet or a path to a JSON permutation spec");
        if (!AlignmentSection.BuiltinSpecs.Contains(spec)) spec = ModelRef(sp!, "alignment.spec");
        var models = recipe.Models.Select(x => x.Model).ToList();
        string reference = f.TryGetValue("reference", out var r) ? ModelRef(r, "alignment.reference") : models[0];
        if (!models.Contains(reference))
            throw CloudSoupException.Recipe("alignment.reference", $"'{reference}' is not one of the models ({string.Join(", ", models)})");
        if (models.Count < 2 && (recipe.BaseModel is null || recipe.BaseModel == reference))
            throw CloudSoupException.Recipe("alignment", "needs at least two models to align");
        int maxIter = f.TryGetValue("max_iter", out var mi) ? ParsePositiveInt(mi, "alignment.max_iter") : AlignmentSection.DefaultMaxIter;
        long seed = f.TryGetValue("seed", out var sd) ? ParseLong(sd, "alignment.seed") : recipe.Seed;
        int points = f.TryGetValue("path_points", out var pp) ? ParsePositiveInt(pp, "alignment.path_points") : AlignmentSection.DefaultPathPoints;
        if (points < 2 || points > 101) throw CloudSoupException.Recipe("alignment.path_points", $"must be between 2 and 101 (got {points})");
        bool resetBn = !f.TryGetValue("reset_bn", out var rb) || ParseBool(rb, "alignment.reset_bn");
        if (method == AlignmentSection.ActivationMatching)
        {
            if (recipe.Evaluation is null)
                throw CloudSoupException.Recipe("alignment.method", "activation_matching needs evaluation.data (activations are measured on it)");
            if (!AlignmentSection.ActivationArchitectures.Contains(recipe.Evaluation.Model))
                throw CloudSoupException.Recipe("alignment.method", $"activation_matching runs the built-in architectures ({string.Join(", ", AlignmentSection.ActivationArchitectures)}) to measure activations; evaluation.model is {recipe.Evaluation.Model} (use weight_matching, which needs only the weights)");
        }
        return new AlignmentSection(method, spec, reference, maxIter, seed, points, resetBn);
    }

    private static ScopeAlignmentSection? ParseScopeAlignment(YamlNode node, int modelCount)
    {
        if (node is not YamlMappingNode map) throw CloudSoupException.Recipe("scope_alignment", "must be a mapping like {enabled: true}");
        var f = Fields(map, "scope_alignment", ScopeAlignmentKeys);
        bool enabled = !f.TryGetValue("enabled", out var en) || ParseBool(en, "scope_alignment.enabled");
        string fusion = f.TryGetValue("fusion", out var fu) ? Scalar(fu, "scope_alignment.fusion") : "moment";
        if (fusion is not ("moment" or "mean")) throw CloudSoupException.Recipe("scope_alignment.fusion", $"unknown fusion '{fusion}' (expected moment or mean)");
        string layers = f.TryGetValue("layers", out var ly) ? Scalar(ly, "scope_alignment.layers") : "matrices";
        if (layers is not ("matrices" or "all")) throw CloudSoupException.Recipe("scope_alignment.layers", $"unknown layer selection '{layers}' (expected matrices or all)");
        double eps = f.TryGetValue("eps", out var ep) ? ParseDouble(ep, "scope_alignment.eps") : 1e-12;
        if (eps < 0) throw CloudSoupException.Recipe("scope_alignment.eps", "must be >= 0");
        List<double>? weights = null;
        if (f.TryGetValue("weights", out var wn))
        {
            if (wn is not YamlSequenceNode ws || ws.Children.Count != modelCount)
                throw CloudSoupException.Recipe("scope_alignment.weights", $"must be a list of {modelCount} numbers, one per model in recipe order");
            weights = ws.Children.Select((c, i) => ParseDouble(c, $"scope_alignment.weights[{i}]")).ToList();
            if (weights.Any(w => w < 0) || weights.Sum() <= 0) throw CloudSoupException.Recipe("scope_alignment.weights", "must be non-negative with a positive sum");
        }
        return enabled ? new ScopeAlignmentSection(fusion, weights, layers, eps) : null;
    }
}
