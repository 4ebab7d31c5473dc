package org.flexidepth.llama;

/**
 * What a routing change (attaching or detaching a FlexiDepth plug-in, a new threshold, forced
 * routing) does to the tokens already in a session's cache. Their K/V were computed under the old
 * routing, so reusing them makes the next reply differ from what the new routing computes from
 * scratch.
 */
public enum CachePolicy {
    /** Empty the cache: the next prompt is evaluated entirely under the new routing (the default). */
    DISCARD,
    /**
     * Keep the cached tokens and their K/V, computed under the old routing; only tokens evaluated
     * from now on use the new one. Faster for a long shared prefix, but not what the new routing
     * alone would compute.
     */
    KEEP
}
