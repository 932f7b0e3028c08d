// What a recipe may be, checked before it is interpreted, by every entry point (HTTP, blob drops, `cloudsoup
// merge`/`submit`, the worker). The shape limits (size, depth, nodes, scalar length) are enforced while the YAML is
// read (BoundedYaml), so a hostile document never becomes a tree: a recursive alias, 30,000 nested brackets or an
// alias bomb ("billion laughs") ends as a one-line error naming the field instead of a stack overflow or gigabytes
// of memory. The ingredient limits are enforced by RecipeParser where each list is read. README.md ("Recipe
// limits") and docs/contracts.md list them; docs/reliability.md says what each hostile case ends as.
//
// The numbers leave room for every real recipe: a mergekit config nests about 10 levels (slices → sources →
// parameters → filter list → value list) and holds tens of models; the model soups paper (Wortsman et al. 2022,
// arXiv:2203.05482) soups at most 72 fine-tuned models. The job record (an Azure Table entity) holds no list that
// grows with these counts: Azure Table string properties are limited to 64 KiB and entities to 1 MiB
// (https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model),
// so the recipe and the input versions live as blobs under jobs/<id>/ and the record holds their paths.
namespace CloudSoup.Control.Recipes;

public static class RecipeLimits
{
    /// <summary>The largest recipe accepted, in bytes (UTF-8).</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>How deeply collections may nest (the root mapping is level 1; aliases count at the depth they expand to).</summary>
    public const int MaxDepth = 32;

    /// <summary>Scalars, sequences and mappings in the document after alias expansion (an alias counts as its anchor's whole subtree).</summary>
    public const int MaxNodes = 100_000;

    /// <summary>The longest scalar (a name, a filter, a path); model references are further limited to <see cref="MaxReferenceChars"/>.</summary>
    public const int MaxScalarChars = 4096;

    /// <summary>
    /// The longest top-level <c>chat_template</c> (Jinja text written into the merged tokenizer_config.json): real chat
    /// templates run to several thousand characters, so this one scalar gets more room than a name or a path.
    /// </summary>
    public const int MaxChatTemplateChars = 65_536;

    /// <summary>The longest scalar allowed at a recipe path (as errors name it): <see cref="MaxScalarChars"/> except where a key says otherwise.</summary>
    public static int MaxScalarCharsAt(string path) => path == "chat_template" ? MaxChatTemplateChars : MaxScalarChars;

    /// <summary>
    /// The longest model (or alignment spec) reference: a blob name has at most 1024 characters
    /// (https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata).
    /// </summary>
    public const int MaxReferenceChars = 1024;

    /// <summary>Distinct models a recipe may merge (models, or the models its slices name).</summary>
    public const int MaxModels = 256;

    /// <summary>Entries of <c>slices</c>.</summary>
    public const int MaxSlices = 1024;

    /// <summary>Sources of one slice.</summary>
    public const int MaxSliceSources = MaxModels;

    /// <summary>Entries of one parameter list: {filter, value} entries, gradient points or step values.</summary>
    public const int MaxParameterListEntries = 256;

    /// <summary>
    /// Files the merged model may be split into (output.shard_size; 200 × 5 GB shards is a 1 TB model). Every output
    /// path is listed in the job record, whose string properties hold at most 64 KiB of UTF-16; 200 paths of up to
    /// 120 characters plus the index and the reports stay below it.
    /// </summary>
    public const int MaxOutputShards = 200;

    /// <summary>
    /// The most parts (queue messages, workers) one job is split into (the parallelism section). Each part is a row of
    /// the jobs table and a bit of the job record's completion mask, so the number is bounded; 64 workers already read
    /// a 420 GB merge in parts of under 7 GB.
    /// </summary>
    public const int MaxParts = 64;
}
