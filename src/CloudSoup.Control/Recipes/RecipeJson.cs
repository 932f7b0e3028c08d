using System.Text.Json;
using System.Text.Json.Nodes;
using CloudSoup.Control.Tensors;

namespace CloudSoup.Control.Recipes;

/// <summary>The recipe as resolved, in canonical JSON: stored next to every output and hashed into job ids.</summary>
public static class RecipeJson
{
    public static JsonObject ToJson(Recipe r)
    {
        var o = new JsonObject { ["merge_method"] = r.MergeMethod };
        if (r.BaseModel != null) o["base_model"] = r.BaseModel;
        if (r.Slices is { } slices)
        {
            o["slices"] = new JsonArray(slices.Select(s =>
            {
                var so = new JsonObject
                {
                    ["sources"] = new JsonArray(s.Sources.Select(src =>
                    {
                        var srco = new JsonObject { ["model"] = src.Model, ["layer_range"] = new JsonArray(src.Start, src.End) };
                        if (src.Parameters.Count > 0) srco["parameters"] = Params(src.Parameters);
                        return (JsonNode)srco;
                    }).ToArray()),
                };
                if (s.Parameters.Count > 0) so["parameters"] = Params(s.Parameters);
                return (JsonNode)so;
            }).ToArray());
        }
        else
        {
            o["models"] = new JsonArray(r.Models.Select(m =>
            {
                var mo = new JsonObject { ["model"] = m.Model };
                if (m.Parameters.Count > 0) mo["parameters"] = Params(m.Parameters);
                return (JsonNode)mo;
            }).ToArray());
        }
        if (r.Parameters.Count > 0) o["parameters"] = Params(r.Parameters);
        if (r.DType is DType d) o["dtype"] = DTypes.RecipeName(d);
        if (r.OutDType is DType od) o["out_dtype"] = DTypes.RecipeName(od);
        if (r.Name != null) o["name"] = r.Name;
        o["seed"] = r.Seed;
        o["tensors"] = r.Tensors.ToString().ToLowerInvariant();
        if (r.Evaluation is { } e)
        {
            var eo = new JsonObject { ["model"] = e.Model, ["data"] = e.Data, ["batch_size"] = e.BatchSize, ["reset_bn"] = e.ResetBn, ["reset_bn_examples"] = e.ResetBnExamples };
            if (e.Test != null) eo["test"] = e.Test;
            if (e.MemoryBudgetBytes != EvaluationSection.DefaultMemoryBudget) eo["memory_budget"] = e.MemoryBudgetBytes;
            if (e.Limits is { } el) eo["limits"] = Limits(el);
            o["evaluation"] = eo;
        }
        if (r.Alignment is { } a)
            o["alignment"] = new JsonObject
            {
                ["method"] = a.Method, ["spec"] = a.Spec, ["reference"] = a.Reference, ["max_iter"] = a.MaxIter,
                ["seed"] = a.Seed, ["path_points"] = a.PathPoints, ["reset_bn"] = a.ResetBn,
            };
        if (r.ScopeAlignment is { } sa)
        {
            var so = new JsonObject { ["enabled"] = true, ["fusion"] = sa.Fusion, ["layers"] = sa.Layers, ["eps"] = sa.Eps };
            if (sa.Weights != null) so["weights"] = new JsonArray(sa.Weights.Select(w => (JsonNode)w).ToArray());
            o["scope_alignment"] = so;
        }
        if (r.Fisher is { } f)
        {
            var fo = new JsonObject
            {
                ["model"] = f.Model, ["data"] = f.Data, ["labels"] = f.Labels.ToString().ToLowerInvariant(), ["samples"] = f.Samples, ["seed"] = f.Seed,
            };
            if (f.Limits is { } fl) fo["limits"] = Limits(fl);
            o["fisher"] = fo;
        }
        // Written only when set, so the job ids of recipes without them do not change.
        if (r.TokenizerSource is { } ts) o["tokenizer_source"] = ts.Text;
        if (r.ChatTemplate != null) o["chat_template"] = r.ChatTemplate;
        var output = new JsonObject { ["shard_size"] = r.Output.ShardSizeBytes };
        if (r.Output.DType is DType odt) output["dtype"] = DTypes.RecipeName(odt);
        o["output"] = output;
        // Written only when not the default: a recipe that does not set it keeps the job id it had before the key existed.
        if (r.NonFinite != NonFinitePolicy.Warn) o["nonfinite"] = r.NonFinite.ToString().ToLowerInvariant();
        // Written only when given, for the same reason: how a job is split never changes its bytes (docs/fanout.md).
        if (r.Parallelism is { } p) o["parallelism"] = new JsonObject { ["parts"] = p.Parts is int k ? JsonValue.Create(k) : JsonValue.Create("auto") };
        return o;
    }

    private static JsonObject Limits(EvaluationLimits l)
    {
        var o = new JsonObject();
        if (l.MemoryBytes is long m) o["memory"] = m;
        if (l.Seconds is int s) o["seconds"] = s;
        return o;
    }

    public static string ToJsonString(Recipe r) => ToJson(r).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    private static JsonObject Params(IReadOnlyDictionary<string, ParameterSetting> p)
    {
        var o = new JsonObject();
        foreach (var (k, v) in p.OrderBy(kv => kv.Key, StringComparer.Ordinal)) o[k] = v.ToJson();
        return o;
    }
}
